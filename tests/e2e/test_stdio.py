"""A real ``flow-mcp serve`` stdio subprocess: the tools work, stdout carries only JSON-RPC, no secret leaks."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from flow_mcp.sandbox import SandboxConfig, SandboxServer

from ..support.servers import FAST_PACING, SECRET_KEY, server_env, stdio_server, teed_server, text_of

pytestmark = pytest.mark.anyio


@pytest.fixture
def secret_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(pacing=FAST_PACING, seed=11, api_key=SECRET_KEY)) as server:
        yield server


async def run_every_tool(client: Client) -> list[Any]:
    """Call each of the four tools once, plus a failing call; return every result."""
    results = []
    seen: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    ask = await client.call_tool(
        "ask", {"message": "Build a flow with emoji 🚀 and 日本語"}, progress_callback=on_progress
    )
    results.append(ask)
    assert not ask.is_error, text_of(ask)
    assert ask.structured_content is not None and ask.structured_content["status"] == "completed"
    assert "🚀" in ask.structured_content["answer"] and "日本語" in ask.structured_content["answer"]
    assert "Answer ready" in seen
    created = await client.call_tool("create_session", {"start_with_welcome_message": True})
    results.append(created)
    session_id = created.structured_content["session_id"]  # type: ignore[index]
    invoked = await client.call_tool("invoke", {"session_id": session_id, "message": "hello"})
    results.append(invoked)
    cursor = invoked.structured_content["cursor"]  # type: ignore[index]
    with anyio.fail_after(30):
        while True:
            polled = await client.call_tool(
                "poll_events", {"session_id": session_id, "cursor": cursor, "wait_seconds": 2}
            )
            results.append(polled)
            assert not polled.is_error, text_of(polled)
            cursor = polled.structured_content["cursor"]  # type: ignore[index]
            if polled.structured_content["status"] != "running":  # type: ignore[index]
                break
    results.append(await client.call_tool("invoke", {"session_id": "no-such-session", "message": "hi"}))
    results.append(await client.call_tool("ask", {"message": ""}))
    return results


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stdout_carries_only_json_rpc_through_a_whole_session_with_debug_logging(
    secret_sandbox: SandboxServer, tmp_path: Path, mode: str
) -> None:
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    env = server_env(secret_sandbox, FLOW_MCP_LOG_LEVEL="debug")
    with anyio.fail_after(60):
        async with Client(teed_server(env, out, err), mode=mode) as client:
            results = await run_every_tool(client)
    lines = out.read_bytes().decode("utf-8").splitlines()
    assert lines
    for line in lines:
        message = json.loads(line)
        assert message["jsonrpc"] == "2.0"
    logged = err.read_text("utf-8").splitlines()
    events = [json.loads(line) for line in logged if line.startswith("{")]
    assert any(entry.get("event") == "flowhunt_event" for entry in events)
    assert any(entry.get("event") == "flowhunt_request" and entry.get("path") for entry in events)
    # The secret appears nowhere: not on stdout, not in the logs, not in any result.
    everything = out.read_text("utf-8") + err.read_text("utf-8") + json.dumps([r.model_dump() for r in results])
    assert SECRET_KEY not in everything


async def test_the_four_tools_work_through_a_stdio_subprocess(sandbox: SandboxServer) -> None:
    with anyio.fail_after(60):
        async with Client(stdio_server(server_env(sandbox))) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert tools == {"ask", "create_session", "invoke", "poll_events", "list_flows", "run_flow", "respond"}
            await run_every_tool(client)


async def test_a_wrong_api_key_is_a_tool_error_that_does_not_echo_the_key(
    secret_sandbox: SandboxServer, tmp_path: Path
) -> None:
    wrong = "fh-wrong-KEY-0123456789abcdef"
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    env = server_env(secret_sandbox, FLOWHUNT_API_KEY=wrong, FLOW_MCP_LOG_LEVEL="debug")
    async with Client(teed_server(env, out, err)) as client:
        result = await client.call_tool("ask", {"message": "hi"})
    assert result.is_error and "FLOWHUNT_API_KEY" in text_of(result)
    assert wrong not in out.read_text("utf-8") + err.read_text("utf-8") + text_of(result)


@pytest.fixture
def silent_flowhunt() -> Iterator[str]:
    """A loopback address that takes connections and never answers: a call to it would hang."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_initialize_and_tools_list_answer_fast_when_flowhunt_is_unreachable(silent_flowhunt: str) -> None:
    env = server_env(None, FLOWHUNT_BASE_URL=silent_flowhunt, FLOWHUNT_API_KEY="x" * 24)
    requests = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    started = time.monotonic()
    server = subprocess.Popen(
        [sys.executable, "-m", "flow_mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write("".join(json.dumps(r) + "\n" for r in requests).encode())
    server.stdin.flush()
    answers = [json.loads(server.stdout.readline()) for _ in range(2)]
    elapsed = time.monotonic() - started
    server.stdin.close()
    server.wait(timeout=10)
    assert server.stderr is not None
    server.stderr.close()
    server.stdout.close()
    assert answers[0]["id"] == 1 and answers[0]["result"]["serverInfo"]["name"] == "flow-mcp"
    assert {tool["name"] for tool in answers[1]["result"]["tools"]} == {
        "ask",
        "create_session",
        "invoke",
        "poll_events",
        "list_flows",
        "run_flow",
        "respond",
    }
    assert elapsed < 20  # generous bound for a cold interpreter; the point is no wait on a FlowHunt that never answers


async def test_cancelling_ask_over_stdio_stops_the_servers_polling() -> None:
    with SandboxServer(SandboxConfig(pacing=0.1, seed=5)) as sandbox:
        async with Client(stdio_server(server_env(sandbox))) as client:
            await client.list_tools()
            with anyio.move_on_after(1.5):
                await client.call_tool("ask", {"message": "a long task please"})
            await anyio.sleep(0.7)  # the cancel notification crosses the pipe
            polls_then = len(sandbox.state.request_log())
            await anyio.sleep(1.0)
            assert len(sandbox.state.request_log()) == polls_then
            still = await client.call_tool("ask", {"message": "still there?"})
            assert not still.is_error
