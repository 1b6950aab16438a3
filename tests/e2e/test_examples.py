"""examples/ work as shipped: each config launches a server that lists the tools; the scripts run to the end."""

from __future__ import annotations

import shlex
import subprocess
import sys
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from flow_mcp.sandbox import SandboxServer

from ..support.examples import CLAUDE_CODE_LINES, CONFIGS, EXAMPLES, servers_of
from ..support.servers import server_env

TOOLS = {"ask", "create_session", "invoke", "poll_events", "list_flows", "run_flow", "respond"}
PLACEHOLDER_COMMANDS = (
    "/absolute/path/to/flow_mcp/.venv/bin/flow-mcp",
    "C:\\absolute\\path\\to\\flow_mcp\\.venv\\Scripts\\flow-mcp.exe",
)


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


def test_the_library_example_follows_a_turn_to_its_end_against_the_sandbox(sandbox: SandboxServer) -> None:
    done = run_python([str(EXAMPLES / "library.py")], sandbox)  # Settings() reads FLOWHUNT_BASE_URL and the key
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "human message Build a flow that answers FAQ from my docs"
    assert any(line.startswith("ai message ") for line in lines)
    assert lines[-1] == "turn: completed"
