"""``flow-mcp config HOST``: snippets with this install's absolute paths that really start the server."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from flow_mcp.cli.hostconfig import KEY_PLACEHOLDER
from flow_mcp.sandbox import SandboxServer

from ..support.servers import server_env

TOOLS = {"ask", "create_session", "invoke", "poll_events", "list_flows", "run_flow", "respond"}
SECRET = "fh-live-SECRET-from-the-environment-1234"


def config(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flow_mcp", "config", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=server_env(None, FLOWHUNT_API_KEY=SECRET, **extra),
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def server_entry(host: str, body: dict[str, Any]) -> dict[str, Any]:
    servers = body["servers"] if host == "vscode" else body["mcpServers"]
    (entry,) = servers.values()
    return dict(entry)


async def list_tools(command: str, args: list[str], env: dict[str, str]) -> set[str]:
    with anyio.fail_after(60):
        async with Client(StdioServerParameters(command=command, args=args, env=env)) as client:
            return {tool.name for tool in (await client.list_tools()).tools}


@pytest.mark.parametrize("host", ["claude-desktop", "cursor", "vscode"])
@pytest.mark.parametrize("sandbox", [False, True])
def test_json_hosts_get_valid_json_with_absolute_paths_and_no_real_key(host: str, sandbox: bool) -> None:
    done = config(host, *(["--sandbox"] if sandbox else []))
    assert done.returncode == 0, done.stderr
    entry = server_entry(host, json.loads(done.stdout))  # stdout is the JSON and nothing else
    assert Path(entry["command"]).is_absolute() and Path(entry["command"]).exists()
    assert entry["args"][-1] == "--sandbox" if sandbox else entry["args"][-1] == "serve"
    assert SECRET not in done.stdout
    key = entry.get("env", {}).get("FLOWHUNT_API_KEY")
    if sandbox:
        assert key is None
    else:
        assert key in (KEY_PLACEHOLDER, "${input:flowhunt-api-key}")
    if host == "vscode":
        assert entry["type"] == "stdio"


@pytest.mark.anyio
@pytest.mark.parametrize("host", ["claude-desktop", "cursor", "vscode"])
async def test_the_command_a_json_snippet_names_starts_a_server_that_lists_the_tools(host: str) -> None:
    done = config(host, "--sandbox")
    entry = server_entry(host, json.loads(done.stdout))
    # A GUI host passes only the snippet's env (plus a minimal system environment), not the shell's.
    env = {"PATH": "/usr/bin:/bin", **entry.get("env", {})}
    assert await list_tools(entry["command"], entry["args"], env) == TOOLS


@pytest.mark.anyio
async def test_the_claude_code_line_registers_a_command_that_starts_the_server(sandbox: SandboxServer) -> None:
    done = config("claude-code")
    assert done.returncode == 0 and SECRET not in done.stdout
    words = shlex.split(done.stdout)
    assert words[:4] == ["claude", "mcp", "add", "flowhunt"]
    separator = words.index("--")
    env = dict(value.split("=", 1) for flag, value in zip(words[4:separator:2], words[5:separator:2], strict=True))
    assert env["FLOWHUNT_API_KEY"] == KEY_PLACEHOLDER
    command, *args = words[separator + 1 :]
    assert Path(command).is_absolute()
    env.update(FLOWHUNT_API_KEY=sandbox.config.api_key, FLOWHUNT_BASE_URL=sandbox.url, PATH="/usr/bin:/bin")
    assert await list_tools(command, args, env) == TOOLS


def test_an_unknown_host_is_a_one_line_usage_error() -> None:
    done = config("notepad")
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
