"""``flow-mcp config HOST``: the config snippet for an MCP host, with absolute paths of this install.

GUI hosts (Claude Desktop, Cursor, VS Code) start servers without the shell's PATH, so a bare
``flow-mcp`` or ``uvx`` fails there with ``spawn ... ENOENT``. The snippets name the script (or the
interpreter) of this very install instead, and never carry a real key: only a placeholder.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HOSTS = ("claude-desktop", "claude-code", "cursor", "vscode")
SERVER_NAME = "flowhunt"
KEY_PLACEHOLDER = "your-flowhunt-api-key"
VSCODE_KEY_INPUT = "flowhunt-api-key"

# Where each host keeps its config, for the hint on stderr.
CONFIG_FILES = {
    "claude-desktop": (
        "claude_desktop_config.json (macOS: ~/Library/Application Support/Claude/, "
        "Windows: %APPDATA%\\Claude\\, Linux: ~/.config/Claude/); merge into its mcpServers"
    ),
    "claude-code": "run the command in a shell (add --scope user to use it in every project)",
    "cursor": "~/.cursor/mcp.json (all projects) or .cursor/mcp.json (one project); merge into its mcpServers",
    "vscode": ".vscode/mcp.json in your workspace (or the user mcp.json); VS Code asks for the key once",
}


@dataclass(frozen=True)
class Launch:
    """How a host starts this install's server: the command, its arguments and extra environment."""

    command: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)


def launcher(executable: str | None = None, *, windows: bool | None = None, sandbox: bool = False) -> Launch:
    """The ``flow-mcp`` script next to the interpreter if there is one, else ``python -m flow_mcp``."""
    python = Path(executable or sys.executable).absolute()  # not resolve(): a venv's python is a symlink
    windows = os.name == "nt" if windows is None else windows
    script = python.parent / ("flow-mcp.exe" if windows else "flow-mcp")
    extra = ["--sandbox"] if sandbox else []
    if script.is_file():
        return Launch(str(script), ["serve", *extra])
    env: dict[str, str] = {}
    if not _installed():
        # Run from a source checkout without an install: the host's interpreter must still find the package.
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    return Launch(str(python), ["-m", "flow_mcp", "serve", *extra], env)


def _installed() -> bool:
    try:
        metadata.distribution("flow-mcp")
    except metadata.PackageNotFoundError:
        return False
    return True


def snippet(host: str, *, sandbox: bool = False, launch: Launch | None = None) -> str:
    """The text to paste for ``host``: JSON for the GUI hosts, a shell command for Claude Code."""
    launch = launch or launcher(sandbox=sandbox)
    env = dict(launch.env)
    if host == "claude-code":
        return _claude_code(launch, env, sandbox)
    if host == "vscode":
        if not sandbox:
            env["FLOWHUNT_API_KEY"] = f"${{input:{VSCODE_KEY_INPUT}}}"
        server: dict[str, Any] = {"type": "stdio", "command": launch.command, "args": launch.args}
        if env:
            server["env"] = env
        body: dict[str, Any] = {"servers": {SERVER_NAME: server}}
        if not sandbox:
            body["inputs"] = [
                {"type": "promptString", "id": VSCODE_KEY_INPUT, "description": "FlowHunt API key", "password": True}
            ]
        return json.dumps(body, indent=2)
    if host in ("claude-desktop", "cursor"):
        if not sandbox:
            env["FLOWHUNT_API_KEY"] = KEY_PLACEHOLDER
        entry: dict[str, Any] = {"command": launch.command, "args": launch.args}
        if env:
            entry["env"] = env
        return json.dumps({"mcpServers": {SERVER_NAME: entry}}, indent=2)
    raise ValueError(f"unknown host {host!r}: one of {', '.join(HOSTS)}")


def _claude_code(launch: Launch, env: dict[str, str], sandbox: bool) -> str:
    if not sandbox:
        env["FLOWHUNT_API_KEY"] = KEY_PLACEHOLDER
    words = ["claude", "mcp", "add", SERVER_NAME]
    for name, value in env.items():
        words += ["--env", f"{name}={value}"]
    words += ["--", launch.command, *launch.args]
    return subprocess.list2cmdline(words) if os.name == "nt" else shlex.join(words)
