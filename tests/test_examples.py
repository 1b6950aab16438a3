"""examples/ work as shipped: each config launches a server that lists the tools; the scripts run to the end."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from flow_mcp.sandbox import SandboxServer

from .conftest import ROOT, server_env

EXAMPLES = ROOT / "examples"
JSON_EXAMPLES = sorted(EXAMPLES.glob("*.json"))
CONFIGS = {path.name: json.loads(path.read_text("utf-8")) for path in JSON_EXAMPLES}
CLAUDE_CODE_LINES = [
    line for line in (EXAMPLES / "claude_code.sh").read_text("utf-8").splitlines() if line.startswith("claude")
]
TOOLS = {"ask", "create_session", "invoke", "poll_events", "list_flows", "run_flow", "respond"}
PLACEHOLDER_COMMANDS = (
    "/absolute/path/to/flow_mcp/.venv/bin/flow-mcp",
    "C:\\absolute\\path\\to\\flow_mcp\\.venv\\Scripts\\flow-mcp.exe",
)


def servers_of(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    servers = config.get("mcpServers", config.get("servers"))
    assert isinstance(servers, dict) and servers
    return servers


def this_install(entry: dict[str, Any], sandbox: SandboxServer) -> StdioServerParameters:
    """The example's server, with its placeholder command swapped for this install and the sandbox as FlowHunt."""
    assert entry["command"] in PLACEHOLDER_COMMANDS
    env = server_env(None)
    for name, value in entry.get("env", {}).items():
        env[name] = value
    if "--sandbox" not in entry["args"]:
        assert entry["env"]["FLOWHUNT_API_KEY"] in ("your-flowhunt-api-key", "${input:flowhunt-api-key}")
        env.update(FLOWHUNT_API_KEY=sandbox.config.api_key, FLOWHUNT_BASE_URL=sandbox.url)
    # `flow-mcp ARGS` is `python -m flow_mcp ARGS`: the script is a console entry point for flow_mcp.cli:main.
    return StdioServerParameters(command=sys.executable, args=["-m", "flow_mcp", *entry["args"]], env=env)


def test_there_is_an_example_for_every_host_with_and_without_an_account() -> None:
    names = set(CONFIGS)
    for host in ("claude_desktop_config", "cursor_mcp", "vscode_mcp"):
        assert {f"{host}.json", f"{host}.sandbox.json"} <= names
    assert "claude_desktop_config.windows.json" in names
    assert all((EXAMPLES / name).exists() for name in ("claude_code.sh", "agent_client.py", "library.py"))


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(CONFIGS))
async def test_every_json_example_launches_a_server_that_lists_the_tools(name: str, sandbox: SandboxServer) -> None:
    for entry in servers_of(CONFIGS[name]).values():
        assert entry["args"][0] == "serve"
        if name.startswith("vscode"):
            assert entry["type"] == "stdio"
        with anyio.fail_after(60):
            async with Client(this_install(entry, sandbox)) as client:
                assert {tool.name for tool in (await client.list_tools()).tools} == TOOLS


def test_the_windows_example_uses_the_scripts_exe_with_escaped_backslashes() -> None:
    raw = (EXAMPLES / "claude_desktop_config.windows.json").read_text("utf-8")
    assert "\\\\Scripts\\\\flow-mcp.exe" in raw
    (entry,) = servers_of(json.loads(raw)).values()
    assert entry["command"].endswith("\\Scripts\\flow-mcp.exe")


@pytest.mark.anyio
async def test_every_claude_code_line_launches_a_server_that_lists_the_tools(sandbox: SandboxServer) -> None:
    assert len(CLAUDE_CODE_LINES) == 2
    for line in CLAUDE_CODE_LINES:
        words = shlex.split(line)
        assert words[:3] == ["claude", "mcp", "add"]
        separator = words.index("--")
        env = dict(words[i + 1].split("=", 1) for i in range(4, separator, 2) if words[i] == "--env")
        entry = {"command": words[separator + 1], "args": words[separator + 2 :], "env": env}
        with anyio.fail_after(60):
            async with Client(this_install(entry, sandbox)) as client:
                assert {tool.name for tool in (await client.list_tools()).tools} == TOOLS


def run_python(code_or_file: list[str], sandbox: SandboxServer, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *code_or_file],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=server_env(sandbox, **extra),
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_the_agent_client_example_follows_a_long_turn_with_poll_events(sandbox: SandboxServer) -> None:
    # ask gives up after half a second, so the example must continue the turn with poll_events.
    done = run_python(
        [str(EXAMPLES / "agent_client.py"), "Build a long flow please"], sandbox, FLOW_MCP_ASK_TIMEOUT="0.5"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'You asked: "Build a long flow please"' in done.stdout
    assert "following with poll_events" in done.stderr and "status: completed" in done.stderr


def test_the_readme_quotes_the_library_example_as_shipped() -> None:
    (code,) = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text("utf-8"), re.S)
    assert code == (EXAMPLES / "library.py").read_text("utf-8")


def test_the_library_example_follows_a_turn_to_its_end_against_the_sandbox(sandbox: SandboxServer) -> None:
    done = run_python([str(EXAMPLES / "library.py")], sandbox)  # Settings() reads FLOWHUNT_BASE_URL and the key
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "human message Build a flow that answers FAQ from my docs"
    assert any(line.startswith("ai message ") for line in lines)
    assert lines[-1] == "turn: completed"


def test_importing_flow_mcp_gives_the_client_without_the_mcp_sdk() -> None:
    code = (
        "import sys\n"
        "from flow_mcp import FlowHuntClient, Settings, AuthError, FlowMCPError, Cursor, __version__\n"
        "import flow_mcp\n"
        "assert set(flow_mcp.__all__) >= {'FlowHuntClient', 'Settings', 'AuthError', 'TransportError'}\n"
        "assert all(getattr(flow_mcp, name) for name in flow_mcp.__all__)\n"
        "assert issubclass(AuthError, FlowMCPError)\n"
        "assert not [m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')], 'mcp was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=server_env(None), timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
