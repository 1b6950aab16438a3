"""Fuzzing through a real stdio server: nasty arguments and upstream answers that echo the key leak nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import CallToolResult

from flow_mcp.sandbox import SandboxConfig, SandboxServer

from ..support.fuzzing import EXPECTED_PATH, assert_handled
from ..support.servers import FAST_PACING, SECRET_KEY, server_env, teed_server, text_of
from ..support.upstream import Scripted, Upstream

NASTY_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("create_session", {"context_flow_id": "../../v2/auth/me?x=1#y\x00\n", "start_with_welcome_message": "yes"}),
    ("create_session", {"context_flow_id": 12, "bogus": None}),
    ("invoke", {"session_id": "../invoke", "message": "hi"}),
    ("invoke", {"session_id": "abc%2F..%2Fx", "message": "hi"}),
    ("invoke", {"session_id": "abc\n", "message": "hi"}),
    ("invoke", {"session_id": "a" * 129, "message": "hi"}),
    ("invoke", {"session_id": "abc", "message": "x" * 70_000}),
    ("invoke", {"session_id": "abc", "message": "hi", "ai_model": "gpt-9"}),
    ("invoke", {"message": "hi"}),
    ("poll_events", {"session_id": "abc?x=1", "cursor": "0"}),
    ("poll_events", {"session_id": "abc#frag", "cursor": "0"}),
    ("poll_events", {"session_id": "abc\x00", "cursor": "0"}),
    ("poll_events", {"session_id": "abc", "cursor": "../0"}),
    ("poll_events", {"session_id": "abc", "cursor": "999999999999999999999"}),
    ("poll_events", {"session_id": "abc", "cursor": "c1.!!"}),
    ("poll_events", {"session_id": "abc", "cursor": "0", "wait_seconds": 1e308}),
    ("poll_events", {"session_id": "abc", "cursor": "0", "wait_seconds": [1]}),
    ("poll_events", {"session_id": ["abc"], "cursor": 0}),
    ("ask", {"message": ""}),
    ("ask", {"message": " \n\t "}),
    ("ask", {"message": "hi", "session_id": "../../create"}),
    ("ask", {"message": "hi", "session_id": "abc", "context_flow_id": "f"}),
    ("ask", {"message": "hi", "timeout_seconds": -1}),
    ("ask", {"message": "hi", "timeout_seconds": 10**30}),
    ("ask", {"message": {"text": "hi"}}),
    ("ask", {}),
]


@pytest.mark.anyio
async def test_nasty_arguments_through_a_stdio_server_leak_no_secret_and_keep_stdout_json_rpc(tmp_path: Path) -> None:
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with SandboxServer(SandboxConfig(pacing=FAST_PACING, seed=17, api_key=SECRET_KEY)) as sandbox:
        env = server_env(sandbox, FLOW_MCP_LOG_LEVEL="debug")
        results: list[CallToolResult] = []
        with anyio.fail_after(90):
            async with Client(teed_server(env, out, err)) as client:
                for tool, args in NASTY_CALLS:
                    result = await client.call_tool(tool, args)
                    assert_handled(result, tool)
                    results.append(result)
                results.append(await client.call_tool("ask", {"message": "still there?"}))
                assert not results[-1].is_error, text_of(results[-1])
        paths = [entry["path"] for entry in sandbox.state.request_log()]
    assert all(EXPECTED_PATH.fullmatch(path) for path in paths), paths
    assert_clean_channel(out, err, results)


def assert_clean_channel(out: Path, err: Path, results: list[CallToolResult]) -> None:
    """Stdout is JSON-RPC only, and the API key is nowhere: stdout, the debug log, any result."""
    lines = out.read_bytes().decode("utf-8").splitlines()
    assert lines
    assert all(json.loads(line)["jsonrpc"] == "2.0" for line in lines)
    everything = out.read_text("utf-8") + err.read_text("utf-8") + json.dumps([r.model_dump() for r in results])
    assert SECRET_KEY not in everything


@pytest.mark.anyio
async def test_upstream_answers_that_echo_the_key_leak_nothing_through_a_stdio_server(tmp_path: Path) -> None:
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    echo = json.dumps({"detail": f"bad key {SECRET_KEY}"}).encode()
    listed = json.dumps({"detail": [{"loc": ["header", SECRET_KEY], "msg": SECRET_KEY}, SECRET_KEY]}).encode()
    poll = {"session_id": "s", "cursor": "0"}
    steps: list[tuple[dict[str, Scripted], str, dict[str, Any]]] = [
        ({"me": Scripted(401, echo)}, "ask", {"message": "hi"}),
        ({"create": Scripted(422, listed)}, "create_session", {}),
        ({"create": Scripted(500, echo)}, "ask", {"message": "hi"}),
        ({"invoke": Scripted(429, echo, {"Retry-After": SECRET_KEY})}, "invoke", {"session_id": "s", "message": "m"}),
        ({"invoke": Scripted(403, listed)}, "ask", {"message": "hi", "session_id": "s"}),
        ({"poll": Scripted(404, echo)}, "poll_events", poll),
        ({"poll": Scripted(503, b"\xff" + SECRET_KEY.encode())}, "poll_events", poll),
        ({"poll": Scripted(200, b'[{"event_id": "' + SECRET_KEY.encode())}, "poll_events", poll),
        ({"poll": Scripted(200, json.dumps({"detail": SECRET_KEY}).encode())}, "poll_events", poll),
    ]  # fmt: skip
    with Upstream() as upstream:
        env = server_env(
            None,
            FLOWHUNT_BASE_URL=upstream.url,
            FLOWHUNT_API_KEY=SECRET_KEY,
            FLOW_MCP_LOG_LEVEL="debug",
            FLOW_MCP_MAX_RETRIES="0",
            FLOW_MCP_ASK_TIMEOUT="1",
            FLOW_MCP_SETTLE_SECONDS="0.05",
        )
        results: list[CallToolResult] = []
        with anyio.fail_after(90):
            async with Client(teed_server(env, out, err)) as client:
                for scripted, tool, args in steps:
                    upstream.reset()
                    upstream.script(**scripted)
                    result = await client.call_tool(tool, args)
                    assert_handled(result, tool)
                    assert result.is_error, (tool, text_of(result))
                    results.append(result)
    assert_clean_channel(out, err, results)
