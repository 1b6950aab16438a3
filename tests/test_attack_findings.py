"""Findings of an outside review (branch `attack`): each test fails today and pins what should happen instead.

Reproduction scripts for the same findings, and for the ones that are not tests, are in attack/.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp import Client
from pydantic import SecretStr

from flow_mcp.config import Settings
from flow_mcp.errors import FlowMCPError
from flow_mcp.flowhunt.client import FlowHuntClient
from flow_mcp.server.app import build_server

from .test_fuzz import text_of, upstream_settings
from .upstream import Scripted, Upstream

pytestmark = pytest.mark.anyio


def event(event_id: str, ts: int, action: str = "loading", role: str = "ai", **meta: Any) -> dict[str, Any]:
    return {"event_id": event_id, "created_at_timestamp": str(ts), "event_type": role, "action_type": action,
            "metadata": meta}


ANSWER = event("answer", 6000, "message", message_id="m", message="the answer")


def body(*events: dict[str, Any]) -> Scripted:
    return Scripted(200, json.dumps(list(events)).encode())


@asynccontextmanager
async def server(upstream: Upstream, **overrides: Any) -> AsyncIterator[Client]:
    async with Client(build_server(upstream_settings(upstream, workspace_id="ws-1", **overrides))) as client:
        yield client


async def poll(client: Client, cursor: str) -> dict[str, Any]:
    result = await client.call_tool("poll_events", {"session_id": "sess-1", "cursor": cursor})
    assert not result.is_error, text_of(result)
    return result.structured_content or {}


# -- 1. more than 128 events in one millisecond: poll_events re-delivers them on every call, forever --------------


async def test_poll_events_never_redelivers_events_of_a_crowded_millisecond() -> None:
    crowd = [event(f"ev-{i:04d}", 5000, loading_desc=f"step {i}") for i in range(150)]
    with Upstream() as upstream:
        upstream.script(poll=body(*crowd))
        async with server(upstream) as client:
            cursor, delivered = "1000", []
            for _ in range(3):
                page = await poll(client, cursor)
                delivered += [e["event_id"] for e in page["events"]]
                cursor = page["cursor"]
    # Today: 150, then the same 22 again on every later call (the cursor keeps only 128 ids of one millisecond).
    assert sorted(delivered) == sorted(e["event_id"] for e in crowd)


# -- 2. one event stamped in the future (a year-2100 clock, still < 10**16) swallows the rest of the turn --------


async def test_an_event_stamped_far_ahead_does_not_hide_the_answer() -> None:
    future = event("junk", 4_102_444_800_000, "agent_cot", content="?")  # 2100-01-01
    with Upstream() as upstream:
        upstream.script(poll=body(future))
        async with server(upstream) as client:
            first = await poll(client, "1000")
            upstream.script(poll=body(future, ANSWER))
            later = await poll(client, first["cursor"])
    # Today: the cursor jumped to 2100, the answer (6000) counts as old and is dropped silently; status stays running.
    assert [e["event_id"] for e in later["events"]] == ["answer"]


async def test_an_invoke_created_at_far_ahead_does_not_hide_the_turn() -> None:
    with Upstream() as upstream:
        upstream.script(
            invoke=Scripted(200, b'{"message_id": "m", "created_at": "99999999999999999999"}'), poll=body(ANSWER)
        )
        async with server(upstream, ask_timeout=1.5) as client:
            asked = await client.call_tool("ask", {"message": "hi"})
    # Today: status running, no answer, 0 events (every event is "older" than the 20-digit cursor).
    assert (asked.structured_content or {}).get("answer") == "the answer", text_of(asked)


# -- 3. an event that becomes visible after a later-stamped one was delivered is dropped without a trace -----------


async def test_an_event_made_visible_late_is_still_delivered() -> None:
    early = event("e5000", 5000)
    late = event("e4000", 4000, "v3_tool_call_start", tool_name="search", agent_query="q")
    with Upstream() as upstream:
        upstream.script(poll=body(early))
        async with server(upstream) as client:
            first = await poll(client, "1000")
            upstream.script(poll=body(early, late, ANSWER))
            later = await poll(client, first["cursor"])
    # Today: only "answer" comes, and with the tool call start lost the turn is reported completed.
    assert "e4000" in [e["event_id"] for e in later["events"]]


# -- 4. one event with deeply nested metadata makes the whole session unreadable, with a misleading error ---------


async def test_one_deeply_nested_event_does_not_poison_every_poll_of_the_session() -> None:
    poison = (
        b'{"event_id": "hitl", "created_at_timestamp": "4000", "event_type": "ai", "action_type": "agent_cot",'
        b' "metadata": {"content": "x", "tool_args": ' + b"[" * 2000 + b"]" * 2000 + b"}}"
    )
    answer = json.dumps(ANSWER).encode()
    with Upstream() as upstream:
        upstream.script(poll=Scripted(200, b"[" + poison + b", " + answer + b"]"))
        async with server(upstream) as client:
            result = await client.call_tool("poll_events", {"session_id": "sess-1", "cursor": "1000"})
    # Today: "FlowHunt answered 200 with a body that is not JSON. Retry shortly." from every cursor, forever
    # (the body is valid JSON; json.loads hits its recursion limit before _MAX_METADATA_DEPTH can cut it).
    assert not result.is_error, text_of(result)
    assert (result.structured_content or {}).get("answer") == "the answer"


# -- 5. a FlowHunt key with a non-ASCII character: "internal error", a traceback from `flow-mcp check` ------------


async def test_a_key_with_a_non_ascii_character_is_a_clear_error_not_a_crash() -> None:
    with Upstream() as upstream:
        settings = upstream_settings(upstream, api_key=SecretStr("fh-key-pasted-with-a-curly-quote\u2019"))
        async with FlowHuntClient(settings) as client:
            with pytest.raises(FlowMCPError):  # today: UnicodeEncodeError from httpx2, a tool_crashed
                await client.create_session()


# -- 6. a redirect from FlowHunt (e.g. http:// base URL answered 301 to https://) says nothing useful ------------


async def test_a_redirect_says_what_to_fix() -> None:
    with Upstream() as upstream:
        upstream.script(create=Scripted(301, b"", {"Location": "https://api.flowhunt.io/v3/flow-assistants/create"}))
        settings: Settings = upstream_settings(upstream, workspace_id="ws-1")
        async with Client(build_server(settings)) as client:
            asked = await client.call_tool("ask", {"message": "hi"})
    # Today the whole text is "Error executing tool ask: FlowHunt answered 301".
    assert asked.is_error and "FLOWHUNT_BASE_URL" in text_of(asked), text_of(asked)
