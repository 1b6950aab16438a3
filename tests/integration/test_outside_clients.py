"""What outside MCP clients (TypeScript SDK, fastmcp, LangChain, raw JSON-RPC) found, each proven with a real client:
cancellation and dropped connections on every transport, unreadable stdio lines, argument and prompt errors,
replayed sessions, result sizes, and the tool, schema and resource listings.
Here the in-process tests; those with real processes: tests/e2e/test_outside_clients.py.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from pydantic import SecretStr

from flow_mcp.config import Settings
from flow_mcp.flowhunt.turn import TurnProgress, advance, status_of
from flow_mcp.flowhunt.wire import RawEvent
from flow_mcp.sandbox import SandboxServer
from flow_mcp.server.app import build_server

from ..support.servers import settings_for
from ..support.upstream import Scripted, Upstream

pytestmark = pytest.mark.anyio

INVALID_PARAMS = -32602


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def ask_until_at_work(client: Client, session_id: str) -> None:
    """Start a long ask and return (abandoning it) as soon as the assistant is at work on FlowHunt."""
    at_work = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        if message and "step 1" in message:
            at_work.set()

    async def call() -> None:
        await client.call_tool(
            "ask", {"message": "a long task please", "session_id": session_id}, progress_callback=on_progress
        )

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call)
            await at_work.wait()
            tasks.cancel_scope.cancel()  # the client cancels the call: notifications/cancelled


# -- 9: cancellation and dropped connections ------------------------------------------------------------------


async def test_after_a_cancelled_ask_the_next_one_in_its_session_waits_for_the_turn_instead_of_interleaving(
    sandbox: SandboxServer,
) -> None:
    sandbox.config.update({"pacing": 0.5})
    async with Client(build_server(settings_for(sandbox))) as client:
        created = await client.call_tool("create_session", {})
        assert created.structured_content is not None
        session_id = created.structured_content["session_id"]
        await ask_until_at_work(client, session_id)
        again = await client.call_tool("ask", {"message": "and now this", "session_id": session_id})
    assert again.is_error and "poll_events" in text_of(again)  # how to follow the running turn
    session = sandbox.state.get_session(session_id)
    assert session is not None and len(sandbox.state.session_invocations(session)) == 1


# -- 10: stdio lines the SDK cannot read ----------------------------------------------------------------------


# -- 11: argument errors ----------------------------------------------------------------------------------------

BAD_ARGUMENTS = [
    ("ask", {"message": 5}, "message"),
    ("ask", {"message": ["hi"]}, "message"),
    ("ask", {}, "message"),
    ("ask", {"message": "hi", "timeout_seconds": "soon"}, "timeout_seconds"),
    ("ask", {"message": "hi", "ai_model": 4.1}, "ai_model"),
    ("ask", {"message": "hi", "session_id": {"id": "x"}}, "session_id"),
    ("poll_events", {"session_id": "s", "cursor": 0.5, "wait_seconds": [30]}, "wait_seconds"),
    ("poll_events", {"session_id": 12, "cursor": "0"}, "session_id"),
    ("invoke", {"session_id": "s", "message": None}, "message"),
    ("create_session", {"start_with_welcome_message": "maybe"}, "start_with_welcome_message"),
    ("create_session", {"context_flow_id": ["f"]}, "context_flow_id"),
]


@pytest.mark.parametrize(("tool", "arguments", "named"), BAD_ARGUMENTS)
async def test_an_argument_of_the_wrong_type_gets_an_error_naming_it_and_what_to_send(
    client: Client, sandbox: SandboxServer, tool: str, arguments: dict[str, Any], named: str
) -> None:
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    text = text_of(result)
    assert named in text
    assert "pydantic" not in text and "validation error" not in text, text
    assert sandbox.state.request_log() == []


# -- 12: a replayed session -------------------------------------------------------------------------------------


def event(event_id: str, at: int, kind: str, role: str, **meta: Any) -> RawEvent:
    return RawEvent(event_id=event_id, created_at_timestamp=at, action_type=kind, event_type=role, metadata=meta)


def test_a_turn_whose_answer_is_older_than_the_settle_window_is_completed_while_a_fresh_one_runs() -> None:
    settle, now = 1500, 100_000
    turn = [event("h", 90_000, "message", "human", message="hi"), event("a", 95_000, "message", "ai", message="yo")]
    assert status_of(advance(TurnProgress(), turn, now), now, settle) == "completed"
    just_answered = [*turn[:1], event("a", now - 100, "message", "ai", message="yo")]
    assert status_of(advance(TurnProgress(), just_answered, now), now, settle) == "running"
    # FlowHunt's clock 10 s behind ours, measured when the message was sent: a fresh answer still runs.
    lagging = [*turn[:1], event("a", now - 10_100, "message", "ai", message="yo")]
    assert status_of(advance(TurnProgress(), lagging, now, clock_skew_ms=-10_000), now, settle) == "running"


async def test_replaying_a_finished_session_reports_it_completed(sandbox: SandboxServer) -> None:
    async with Client(build_server(settings_for(sandbox, settle_seconds=1.0))) as client:
        asked = await client.call_tool("ask", {"message": "Build a FAQ bot"})
        assert asked.structured_content is not None and asked.structured_content["status"] == "completed"
        replay = await client.call_tool(
            "poll_events", {"session_id": asked.structured_content["session_id"], "cursor": "0", "wait_seconds": 0}
        )
    assert replay.structured_content is not None
    assert replay.structured_content["answer"] == asked.structured_content["answer"]
    assert replay.structured_content["status"] == "completed"


# -- 13: result sizes --------------------------------------------------------------------------------------------

MEGABYTE = 1_000_000


def big_session() -> list[dict[str, Any]]:
    """A finished session with a 5 MB tool response amid a dozen 300 KB thoughts, one event per millisecond."""
    steps: list[tuple[str, str, str, dict[str, Any]]] = [("h", "human", "message", {"message": "go"})]
    for n in range(12):
        steps.append((f"c{n}", "ai", "agent_cot", {"cot_id": f"c{n}", "content": f"thought {n} " + "x" * 300_000}))
        if n == 5:
            output = {"tool_name": "read_docs", "agent_query": "all", "tool_response": "y" * 5 * MEGABYTE}
            steps.append(("huge", "ai", "v3_tool_call_end", output))
    steps.append(("a", "ai", "message", {"message": "done"}))
    return [
        {"event_id": name, "created_at_timestamp": str(1000 + n), "event_type": role, "action_type": kind,
         "metadata": meta}
        for n, (name, role, kind, meta) in enumerate(steps)
    ]  # fmt: skip


async def test_poll_events_and_the_events_resource_stay_under_the_size_limit_and_page_through_everything() -> None:
    session = big_session()
    with Upstream() as upstream:
        upstream.script(poll=Scripted(body=json.dumps(session).encode()))
        settings = settings_for_upstream(upstream)
        async with Client(build_server(settings)) as client:
            seen: list[dict[str, Any]] = []
            cursor, more = "0", True
            with anyio.fail_after(60):
                while more:
                    result = await client.call_tool("poll_events", {"session_id": "sess-1", "cursor": cursor})
                    assert not result.is_error, text_of(result)[:500]
                    assert len(json.dumps(result.model_dump(mode="json"))) <= MEGABYTE
                    body = result.structured_content
                    assert body is not None
                    seen += body["events"]
                    cursor, more = body["cursor"], body["more"]
            read = await client.read_resource("flowhunt://sessions/sess-1/events")
    assert [e["event_id"] for e in seen] == [e["event_id"] for e in session]  # each once, in order
    huge = next(e for e in seen if e["event_id"] == "huge")
    assert "truncated" in huge["metadata"]["tool_response"]  # cut, and saying so
    (content,) = read.contents
    assert len(content.text) <= MEGABYTE  # type: ignore[union-attr]
    events_body = json.loads(content.text)  # type: ignore[union-attr]
    assert events_body["more"] is True and events_body["events"][0]["event_id"] == "h"


async def test_an_ask_whose_answer_is_huge_stays_under_the_size_limit_and_says_it_was_cut() -> None:
    turn = [
        {"event_id": "h", "created_at_timestamp": "1000", "event_type": "human", "action_type": "message",
         "metadata": {"message": "write a lot"}},
        {"event_id": "a", "created_at_timestamp": "1001", "event_type": "ai", "action_type": "message",
         "metadata": {"message": "z" * 3 * MEGABYTE}},
    ]  # fmt: skip
    with Upstream() as upstream:
        upstream.script(poll=Scripted(body=json.dumps(turn).encode()))
        async with Client(build_server(settings_for_upstream(upstream))) as client:
            with anyio.fail_after(30):
                asked = await client.call_tool("ask", {"message": "write a lot"})
    assert not asked.is_error and asked.structured_content is not None, text_of(asked)[:500]
    assert len(json.dumps(asked.model_dump(mode="json"))) <= MEGABYTE
    assert asked.structured_content["status"] == "completed"
    assert "truncated" in asked.structured_content["answer"]


def settings_for_upstream(upstream: Upstream) -> Settings:
    return Settings(base_url=upstream.url, api_key=SecretStr("fh-upstream-key-123456"), max_retries=0, timeout=10)


# -- 14: prompt errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "arguments", "named"),
    [("no_such_prompt", None, "no_such_prompt"), ("flowhunt_assistant", {"topic": "faq bot"}, "topic")],
)
async def test_an_unknown_prompt_or_argument_is_invalid_params_naming_it(
    client: Client, name: str, arguments: dict[str, str] | None, named: str
) -> None:
    with pytest.raises(MCPError) as refused:
        await client.get_prompt(name, arguments)
    assert refused.value.error.code == INVALID_PARAMS
    assert named in refused.value.error.message


# -- 15: titles, schemas, resources --------------------------------------------------------------------------------


async def test_tools_have_a_title_and_their_schemas_state_every_limit(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for tool in tools.values():
        assert tool.title and tool.annotations is not None and tool.title == tool.annotations.title
    wait = tools["poll_events"].input_schema["properties"]["wait_seconds"]
    assert (wait["minimum"], wait["maximum"]) == (0, 45)
    timeout = tools["ask"].input_schema["properties"]["timeout_seconds"]
    assert (timeout["minimum"], timeout["maximum"]) == (1, 600)
    output = tools["poll_events"].output_schema
    assert output is not None
    metadata = output["$defs"]["Event"]["properties"]["metadata"]
    assert {"object", "array", "string", "null"} <= set(metadata["type"])


async def test_resources_list_shows_the_sessions_the_server_worked_on_and_they_can_be_read(client: Client) -> None:
    assert (await client.list_resources()).resources == []
    asked = await client.call_tool("ask", {"message": "Build a FAQ bot"})
    assert asked.structured_content is not None
    listed = (await client.list_resources()).resources
    assert [str(r.uri) for r in listed] == [f"flowhunt://sessions/{asked.structured_content['session_id']}/transcript"]
    read = await client.read_resource(str(listed[0].uri))
    assert asked.structured_content["answer"] in read.contents[0].text  # type: ignore[union-attr]


# -- the same through the TypeScript SDK (the MCP Inspector CLI) --------------------------------------------------
