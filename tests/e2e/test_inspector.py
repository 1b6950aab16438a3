"""An MCP client nobody here wrote: the official MCP Inspector CLI lists the tools and calls each of them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

import pytest

from flow_mcp.sandbox import SandboxServer
from flow_mcp.server.callers import HANDLE_PATTERN

from ..support.httpserver import HttpServer
from ..support.servers import ROOT, SETTLE_SECONDS, server_env

INSPECTOR = ROOT / "node_modules" / ".bin" / "mcp-inspector"

pytestmark = pytest.mark.skipif(
    not INSPECTOR.exists() or shutil.which("node") is None,
    reason="MCP Inspector not installed: run `npm install --no-package-lock` (needs Node 20+); .ci/run does",
)


def inspect(sandbox: SandboxServer, *method: str) -> Any:
    env_flags = [
        "-e", f"FLOWHUNT_BASE_URL={sandbox.url}",
        "-e", f"FLOWHUNT_API_KEY={sandbox.config.api_key}",
        "-e", f"PYTHONPATH={ROOT}",
        "-e", f"FLOW_MCP_SETTLE_SECONDS={SETTLE_SECONDS}",
    ]  # fmt: skip
    done = subprocess.run(
        [str(INSPECTOR), "--cli", *env_flags, sys.executable, "-m", "flow_mcp", "serve", "--method", *method],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_the_inspector_lists_four_tools_with_input_and_output_schemas(sandbox: SandboxServer) -> None:
    tools = {tool["name"]: tool for tool in inspect(sandbox, "tools/list")["tools"]}
    assert set(tools) == {"ask", "create_session", "invoke", "poll_events", "list_flows", "run_flow", "respond"}
    for tool in tools.values():
        assert tool["inputSchema"]["type"] == "object" and tool["outputSchema"]["type"] == "object"


def call(sandbox: SandboxServer, tool: str, **arguments: object) -> Any:
    tool_args = [flag for name, value in arguments.items() for flag in ("--tool-arg", f"{name}={value}")]
    return inspect(sandbox, "tools/call", "--tool-name", tool, *tool_args)


def test_the_inspector_can_call_every_tool(sandbox: SandboxServer) -> None:
    asked = call(sandbox, "ask", message="Build a FAQ flow")
    assert not asked.get("isError") and asked["structuredContent"]["status"] == "completed"
    assert asked["content"][0]["text"].startswith(asked["structuredContent"]["answer"])
    session_id = call(sandbox, "create_session")["structuredContent"]["session_id"]
    cursor = call(sandbox, "invoke", session_id=session_id, message="hi")["structuredContent"]["cursor"]
    polled = call(sandbox, "poll_events", session_id=session_id, cursor=cursor, wait_seconds=5)
    assert not polled.get("isError") and polled["structuredContent"]["events"]


def test_the_inspector_asks_over_streamable_http(sandbox: SandboxServer) -> None:
    # This Inspector CLI sends no custom headers, so the server runs on loopback without tokens.
    with HttpServer(server_env(sandbox)) as server:
        done = subprocess.run(
            [str(INSPECTOR), "--cli", f"{server.url}/mcp", "--transport", "http", "--method", "tools/call",
             "--tool-name", "ask", "--tool-arg", "message=Build a FAQ flow"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    asked = json.loads(done.stdout)
    assert not asked.get("isError") and asked["structuredContent"]["status"] == "completed"
    # A handle, as every HTTP client gets: never one of the sandbox's own session ids (FlowHunt's capability).
    handle = asked["structuredContent"]["session_id"]
    invoked = [entry["path"] for entry in sandbox.state.request_log() if entry["path"].endswith("/invoke")]
    assert HANDLE_PATTERN.fullmatch(handle) and invoked and not any(handle in path for path in invoked)
