"""The four tools through a real MCP client, in memory, against a real sandbox on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from mcp import Client

from flow_mcp.config import Settings
from flow_mcp.sandbox import SandboxConfig, SandboxServer
from flow_mcp.server.app import build_server

from ..support.servers import settings_for, text_of

pytestmark = pytest.mark.anyio

TOOLS = {"ask", "create_session", "invoke", "poll_events", "list_flows", "run_flow", "respond"}


async def follow_with_poll_events(
    client: Client, session_id: str, cursor: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Call poll_events until the turn is no longer running; every event seen, and the last result."""
    events: list[dict[str, Any]] = []
    with anyio.fail_after(30):
        while True:
            result = await client.call_tool(
                "poll_events", {"session_id": session_id, "cursor": cursor, "wait_seconds": 2}
            )
            assert not result.is_error, text_of(result)
            body = result.structured_content
            assert body is not None
            events += body["events"]
            cursor = body["cursor"]
            if body["status"] != "running":
                return events, body


async def test_the_server_lists_exactly_its_tools_with_schemas(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and tool.input_schema["type"] == "object"
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"
    assert tools["poll_events"].annotations is not None and tools["poll_events"].annotations.read_only_hint
    assert set(tools["ask"].input_schema["required"]) == {"message"}
    assert {"answer", "status", "session_id", "cursor", "tool_calls", "actions"} <= set(
        tools["ask"].output_schema["properties"]  # type: ignore[index]
    )


async def test_ask_returns_the_answer_first_in_text_and_streams_progress(client: Client) -> None:
    seen: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    result = await client.call_tool("ask", {"message": "Build a FAQ bot"}, progress_callback=on_progress)
    assert not result.is_error, text_of(result)
    body = result.structured_content
    assert body is not None
    assert body["status"] == "completed"
    assert "Build a FAQ bot" in body["answer"]
    assert text_of(result).startswith(body["answer"])
    assert body["messages"][-1] == body["answer"]
    assert any(call["name"] == "search_docs" and call["output"] for call in body["tool_calls"])
    assert any(action["type"] == "add_component" for action in body["actions"])
    assert body["events_count"] >= len(seen) - 1 > 3
    assert "Answer ready" in seen and "Calling tool search_docs" in seen


async def test_ask_continues_a_session_when_given_its_id(client: Client) -> None:
    first = (await client.call_tool("ask", {"message": "Make a flow"})).structured_content
    assert first is not None
    second = await client.call_tool("ask", {"message": "Now add memory", "session_id": first["session_id"]})
    body = second.structured_content
    assert body is not None and not second.is_error
    assert body["session_id"] == first["session_id"] and body["status"] == "completed"
    assert "Now add memory" in body["answer"]


async def test_invoke_then_poll_events_delivers_every_event_once(client: Client, sandbox: SandboxServer) -> None:
    created = await client.call_tool("create_session", {})
    session = created.structured_content
    assert session is not None and session["workspace_id"] == sandbox.config.workspace_id
    invoked = await client.call_tool("invoke", {"session_id": session["session_id"], "message": "hello there"})
    assert not invoked.is_error, text_of(invoked)
    body = invoked.structured_content
    assert body is not None and body["cursor"]
    events, last = await follow_with_poll_events(client, session["session_id"], body["cursor"])
    ids = [event["event_id"] for event in events]
    assert len(ids) == len(set(ids))
    emitted = {e["event_id"] for e in sandbox.state.session_events(sandbox.state.get_session(session["session_id"]))}  # type: ignore[arg-type]
    assert set(ids) == emitted
    assert last["status"] == "completed"
    assert [event["at"] for event in events] == sorted(event["at"] for event in events)


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("please fail now", "failed"),
        ("use the hook", "waiting_for_input"),
        ("needs approval", "waiting_for_input"),
        ("close session", "session_closed"),
    ],
)
async def test_ask_reports_how_a_turn_ended(client: Client, message: str, status: str) -> None:
    result = await client.call_tool("ask", {"message": message})
    body = result.structured_content
    assert body is not None and not result.is_error
    assert body["status"] == status
    if status == "failed":
        assert body["error"] and body["error"] in text_of(result)
    if status == "waiting_for_input":
        assert body["waiting_for"]["kind"] in ("hook_waiting_for_input", "hitl_approval_requested")
        assert body["waiting_for"]["hook_id"]


@pytest.fixture
async def slow_client() -> AsyncIterator[tuple[Client, SandboxServer]]:
    """A client whose sandbox plays the 'long' turn over about 6 s."""
    with SandboxServer(SandboxConfig(pacing=0.1, seed=3)) as sandbox:
        async with Client(build_server(settings_for(sandbox))) as client:
            yield client, sandbox


async def test_ask_returns_running_with_a_cursor_at_its_deadline_and_poll_events_finishes_the_turn(
    slow_client: tuple[Client, SandboxServer],
) -> None:
    client, _ = slow_client
    result = await client.call_tool("ask", {"message": "a long task please", "timeout_seconds": 1})
    body = result.structured_content
    assert body is not None and not result.is_error
    assert body["status"] == "running"
    assert "poll_events" in text_of(result) and body["cursor"] in text_of(result)
    seen_by_ask = body["events_count"]
    events, last = await follow_with_poll_events(client, body["session_id"], body["cursor"])
    assert last["status"] == "completed" and last["answer"]
    assert seen_by_ask > 0 and events


async def test_poll_events_with_a_raw_timestamp_cursor_replays_the_session(client: Client) -> None:
    first = (await client.call_tool("ask", {"message": "hi"})).structured_content
    assert first is not None
    replay = await client.call_tool("poll_events", {"session_id": first["session_id"], "cursor": "0"})
    body = replay.structured_content
    assert body is not None and not replay.is_error
    assert first["events_count"] <= len(body["events"])
    assert any(event["role"] == "human" for event in body["events"])


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("ask", {"message": ""}),
        ("ask", {"message": "   "}),
        ("ask", {"message": "x" * (64 * 1024 + 1)}),
        ("ask", {"message": "hi", "ai_model": "GPT-9"}),
        ("ask", {"message": "hi", "session_id": "../../v2/auth/me"}),
        ("ask", {"message": "hi", "timeout_seconds": -1}),
        ("invoke", {"session_id": "a/b", "message": "hi"}),
        ("invoke", {"session_id": "ok", "message": ""}),
        ("poll_events", {"session_id": "ok", "cursor": "not a cursor"}),
        ("poll_events", {"session_id": "ok", "cursor": "0", "wait_seconds": 1000}),
        ("poll_events", {"session_id": "x" * 129, "cursor": "0"}),
        ("poll_events", {"session_id": "ok"}),
        ("ask", {"message": 42}),
    ],
)
async def test_bad_input_gives_a_tool_error_and_no_request(
    client: Client, sandbox: SandboxServer, tool: str, arguments: dict[str, Any]
) -> None:
    before = len(sandbox.state.request_log())
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    assert text_of(result).strip()
    assert len(sandbox.state.request_log()) == before
    still = await client.call_tool("ask", {"message": "still there?"})
    assert not still.is_error


async def test_an_unknown_session_is_a_clear_tool_error(client: Client) -> None:
    result = await client.call_tool("invoke", {"session_id": "no-such-session", "message": "hi"})
    assert result.is_error
    assert "create_session" in text_of(result)


async def test_a_missing_api_key_is_reported_when_a_tool_is_called(sandbox: SandboxServer) -> None:
    settings = settings_for(sandbox, api_key=None)
    async with Client(build_server(settings)) as client:
        tools = await client.list_tools()
        assert len(tools.tools) == len(TOOLS)
        result = await client.call_tool("ask", {"message": "hi"})
    assert result.is_error
    assert "FLOWHUNT_API_KEY" in text_of(result)
    assert sandbox.state.request_log() == []


async def test_listing_tools_makes_no_network_call_even_when_flowhunt_is_unreachable() -> None:
    settings = Settings(base_url="http://127.0.0.1:9", api_key="k" * 20, timeout=1, max_retries=0)
    with anyio.fail_after(5):
        async with Client(build_server(settings)) as client:
            assert len((await client.list_tools()).tools) == len(TOOLS)
            result = await client.call_tool("create_session", {})
    assert result.is_error and "FLOWHUNT_BASE_URL" in text_of(result)


async def test_upstream_failures_become_tool_errors_and_the_server_keeps_running(
    client: Client, sandbox: SandboxServer
) -> None:
    sandbox.state.update_config({"rate_503": 1.0})
    failed = await client.call_tool("create_session", {})
    assert failed.is_error
    sandbox.state.update_config({"rate_503": 0.0})
    worked = await client.call_tool("create_session", {})
    assert not worked.is_error


async def test_cancelling_ask_stops_its_polling(slow_client: tuple[Client, SandboxServer]) -> None:
    client, sandbox = slow_client
    with anyio.move_on_after(0.5):
        await client.call_tool("ask", {"message": "a long task please"})
    await anyio.sleep(0.5)  # let the server notice the cancellation
    polls_then = len(sandbox.state.request_log())
    await anyio.sleep(1.0)
    assert len(sandbox.state.request_log()) == polls_then


@pytest.mark.parametrize("fault", ["rate_500", "rate_reset", "rate_truncated", "rate_wrong_shape"])
async def test_ask_recovers_when_invoke_fails_after_flowhunt_took_the_message(
    client: Client, sandbox: SandboxServer, fault: str
) -> None:
    sandbox.state.update_config({fault: 1.0, "fault_only": "/invoke"})
    result = await client.call_tool("ask", {"message": "recover me"})
    body = result.structured_content
    assert body is not None and not result.is_error, text_of(result)
    assert body["status"] == "completed" and "recover me" in body["answer"]
    session = sandbox.state.get_session(body["session_id"])
    assert session is not None and len(sandbox.state.session_invocations(session)) == 1


async def test_invoke_refused_before_processing_says_it_is_safe_to_send_again(
    client: Client, sandbox: SandboxServer
) -> None:
    created = (await client.call_tool("create_session", {})).structured_content
    assert created is not None
    sandbox.state.update_config({"rate_503": 1.0, "fault_only": "/invoke"})
    result = await client.call_tool("invoke", {"session_id": created["session_id"], "message": "hello"})
    assert result.is_error and "sending it again is safe" in text_of(result)
    session = sandbox.state.get_session(created["session_id"])
    assert session is not None and sandbox.state.session_invocations(session) == []


async def test_invoke_that_timed_out_is_never_resent_and_the_caller_is_told_to_check(
    client: Client, sandbox: SandboxServer
) -> None:
    # FlowHunt takes the message in only after the client gave up: absence right then proves nothing.
    created = (await client.call_tool("create_session", {})).structured_content
    assert created is not None
    sandbox.state.update_config({"rate_stall": 1.0, "stall_s": 2.5, "fault_only": "/invoke"})
    async with Client(build_server(settings_for(sandbox, timeout=0.3))) as impatient:
        result = await impatient.call_tool("invoke", {"session_id": created["session_id"], "message": "slow one"})
    assert result.is_error and "may have reached FlowHunt" in text_of(result)
    await anyio.sleep(3)  # past the stall: whatever FlowHunt does with the request has happened
    session = sandbox.state.get_session(created["session_id"])
    assert session is not None and len(sandbox.state.session_invocations(session)) <= 1
    invoke_requests = [r for r in sandbox.state.request_log() if r["path"].endswith("/invoke")]
    assert len(invoke_requests) == 1


async def test_a_second_ask_on_a_session_whose_turn_is_still_running_is_refused_with_how_to_follow_it(
    slow_client: tuple[Client, SandboxServer],
) -> None:
    client, _ = slow_client
    first = await client.call_tool("ask", {"message": "a long task please", "timeout_seconds": 1})
    body = first.structured_content
    assert body is not None and body["status"] == "running"
    refused = await client.call_tool("ask", {"message": "and another thing", "session_id": body["session_id"]})
    assert refused.is_error and body["cursor"] in text_of(refused)
    _, last = await follow_with_poll_events(client, body["session_id"], body["cursor"])
    assert last["status"] == "completed"
    after = await client.call_tool("ask", {"message": "and another thing", "session_id": body["session_id"]})
    assert not after.is_error and (after.structured_content or {})["status"] == "completed"


async def test_two_concurrent_asks_on_one_session_run_one_turn_and_refuse_the_other(
    slow_client: tuple[Client, SandboxServer],
) -> None:
    client, sandbox = slow_client
    first = (await client.call_tool("ask", {"message": "hello"})).structured_content
    assert first is not None
    results: list[Any] = []

    async def ask_again(message: str) -> None:
        results.append(await client.call_tool("ask", {"message": message, "session_id": first["session_id"]}))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(ask_again, "slow tool one")
        await anyio.sleep(0.3)
        tasks.start_soon(ask_again, "slow tool two")
    assert sorted(result.is_error for result in results) == [False, True]
    session = sandbox.state.get_session(first["session_id"])
    assert session is not None and len(sandbox.state.session_invocations(session)) == 2


async def test_poll_events_hands_out_a_huge_turn_in_parts_without_losing_an_event(
    sandbox: SandboxServer,
) -> None:
    async with Client(build_server(settings_for(sandbox, max_events_per_poll=40))) as client:
        created = (await client.call_tool("create_session", {})).structured_content
        assert created is not None
        invoked = await client.call_tool("invoke", {"session_id": created["session_id"], "message": "events:300"})
        events, last = await follow_with_poll_events(
            client, created["session_id"], invoked.structured_content["cursor"]
        )  # type: ignore[index]
    session = sandbox.state.get_session(created["session_id"])
    assert session is not None
    emitted = {e["event_id"] for e in sandbox.state.session_events(session)}
    ids = [event["event_id"] for event in events]
    assert len(ids) == len(set(ids)) and set(ids) == emitted and len(ids) > 300
    assert last["status"] == "completed"
