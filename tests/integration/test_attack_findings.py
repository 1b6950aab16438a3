"""Findings of an outside review (branch `attack`): each test failed before the fixes and pins what must happen.

Seven tests are the review's (one adjusted, see its comment); the rest were written with the fixes. The
review's reproduction scripts (attack/) are in the history of branch `attack`.
Here the in-process tests; those with real processes: tests/e2e/test_attack_findings.py.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pydantic
import pytest
import structlog
from mcp import Client
from pydantic import SecretStr

from flow_mcp.config import Settings
from flow_mcp.errors import FlowMCPError
from flow_mcp.flowhunt.client import FlowHuntClient
from flow_mcp.flowhunt.cursor import LOOKBACK_MS, MAX_AHEAD_IDS, MAX_REMEMBERED_IDS, Cursor, decode_cursor
from flow_mcp.flowhunt.turn import status_of
from flow_mcp.server.app import build_server

from ..support.servers import text_of
from ..support.upstream import Scripted, Upstream
from ..unit.test_turns import READINGS, FakeServer, answer, human, tool_start
from ..unit.test_turns import ev as raw_event
from .test_fuzz import upstream_settings

pytestmark = pytest.mark.anyio


def event(event_id: str, ts: int, action: str = "loading", role: str = "ai", **meta: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "created_at_timestamp": str(ts),
        "event_type": role,
        "action_type": action,
        "metadata": meta,
    }


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
    key = "fh-key-pasted-with-a-curly-quote\u2019"
    with Upstream() as upstream:
        # Settings refuse such a key outright (fixes: the review's version built them with it), naming the setting,
        # never the key.
        with pytest.raises(pydantic.ValidationError) as refused:
            upstream_settings(upstream, api_key=SecretStr(key))
        assert "api_key" in str(refused.value) and "curly-quote" not in str(refused.value)
        # Settings copied with a key set later skip that check (a per-caller client pool makes them so): the client
        # still fails with its own error.
        settings = upstream_settings(upstream).model_copy(update={"api_key": SecretStr(key)})
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


# == Regression tests written with the fixes (branch `fixes`) =====================================================

NOW = 1_800_000_000_000  # our clock in the pure tests below: every event there is stamped well before it
SETTLE_MS = 100


def take_all(server: FakeServer, cursor: Cursor, polls: int, limit: int | None = None) -> tuple[list[str], Cursor]:
    """Poll ``polls`` times, the way follow() does; every id delivered, in order, and the cursor after."""
    delivered: list[str] = []
    for _ in range(polls):
        fresh, cursor = cursor.accept(server.poll(cursor.query_timestamp()), limit, now_ms=NOW)
        delivered += [e.event_id for e in fresh]
    return delivered, cursor


@READINGS
def test_a_crowded_millisecond_handed_out_in_pages_is_delivered_exactly_once(inclusive: bool) -> None:
    crowd = [raw_event(f"c{i:04d}", 10) for i in range(MAX_REMEMBERED_IDS - 100)] + [raw_event("after", 11)]
    server = FakeServer(list(crowd), inclusive, shuffle=True)
    server.reveal(11)
    delivered, cursor = take_all(server, Cursor(timestamp=5), polls=8, limit=200)
    assert sorted(delivered) == sorted(e.event_id for e in crowd)  # each once, none lost
    assert len(cursor.encode()) < 20_000  # 900 ids remembered, as digests


@READINGS
def test_a_millisecond_more_crowded_than_a_cursor_remembers_is_passed_never_looped(inclusive: bool) -> None:
    crowd = [raw_event(f"c{i:05d}", 10) for i in range(MAX_REMEMBERED_IDS + 300)] + [raw_event("after", 11)]
    server = FakeServer(list(crowd), inclusive)
    server.reveal(11)
    cursor, delivered, skipped = Cursor(timestamp=5), [], []
    for _ in range(12):
        taken = cursor.take(server.poll(cursor.query_timestamp()), 200, now_ms=NOW)
        delivered += [e.event_id for e in taken.events]
        skipped += [] if taken.skipped is None else [taken.skipped]
        cursor = decode_cursor(taken.cursor.encode())  # as a tool caller carries it
    assert len(delivered) == len(set(delivered)), "an event was delivered twice"
    assert "after" in delivered and skipped == [10]  # past the millisecond, said once, and on to the next
    assert len(cursor.encode()) < 65_536


@READINGS
def test_events_made_visible_late_within_the_look_back_are_each_delivered_once(inclusive: bool) -> None:
    rng = random.Random(11)
    events = [raw_event(f"e{i}", 1000 + rng.randint(0, 5000)) for i in range(300)]
    # Each event becomes visible up to 1.5 s after its own timestamp: after many later-stamped ones.
    visible_at = {e.event_id: e.created_at_timestamp + rng.randint(0, LOOKBACK_MS - 500) for e in events}
    cursor, delivered = Cursor(timestamp=1000), []
    for clock in range(1000, 9000, 50):
        bound = int(cursor.query_timestamp())
        batch = [
            e
            for e in events
            if visible_at[e.event_id] <= clock
            and (e.created_at_timestamp > bound or (inclusive and e.created_at_timestamp == bound))
        ]
        rng.shuffle(batch)
        fresh, cursor = cursor.accept(batch, now_ms=NOW)
        delivered += [e.event_id for e in fresh]
        cursor = decode_cursor(cursor.encode())
    assert len(delivered) == len(set(delivered)), "an event was delivered twice"
    assert set(delivered) == {e.event_id for e in events}, "an event was lost"


def test_an_event_made_visible_late_after_the_turn_completed_does_not_reopen_it() -> None:
    taken = Cursor(timestamp=1000).advanced([human("h", 1000), answer("a", 3000)], None, NOW, SETTLE_MS)
    assert status_of(taken.cursor.progress, NOW, SETTLE_MS) == "completed"
    # The person's own message and a tool call of that turn, made visible only now.
    late = [human("h-echo", 2500), tool_start("s", 2600), raw_event("a", 3000, "message")]
    again = taken.cursor.advanced(late, None, NOW + 50, SETTLE_MS)
    assert [e.event_id for e in again.events] == ["h-echo", "s"]
    assert status_of(again.cursor.progress, NOW + 50, SETTLE_MS) == "completed"


def test_events_stamped_ahead_are_each_delivered_once_and_the_surplus_is_dropped_not_looped() -> None:
    ahead = [raw_event(f"f{i:03d}", NOW + 3_600_000 + i) for i in range(MAX_AHEAD_IDS + 10)]
    server = FakeServer([*ahead, raw_event("real", 2000)], inclusive=True)
    server.reveal(10**15)
    cursor, delivered, dropped = Cursor(timestamp=1000), [], []
    for _ in range(3):
        taken = cursor.take(server.poll(cursor.query_timestamp()), now_ms=NOW)
        delivered += [e.event_id for e in taken.events]
        dropped.append(taken.ahead_dropped)
        cursor = decode_cursor(taken.cursor.encode())
    assert len(delivered) == len(set(delivered)) == MAX_AHEAD_IDS + 1 and "real" in delivered
    assert cursor.timestamp == 2000 and dropped == [10, 10, 10]


async def test_a_redirect_mid_turn_names_where_it_points_and_reads_as_sentences() -> None:
    moved = "https://elsewhere.example/v3/flow-assistants/sess-1/invocation_response/999?token=abc#top"
    with Upstream() as upstream:
        upstream.script(poll=Scripted(301, b"", {"Location": moved}))
        async with server(upstream) as client:
            asked = await client.call_tool("ask", {"message": "hi"})
    text = text_of(asked)
    assert asked.is_error and "elsewhere.example/v3/flow-assistants" in text and "FLOWHUNT_BASE_URL" in text
    assert "token=abc" not in text and "#top" not in text
    assert ". The turn may still be running" in text, text  # not "answered 301 The turn may..."


async def test_events_older_than_the_poll_asked_for_are_dropped_with_one_warning_that_counts_them() -> None:
    seconds = [event("s1", 5), event("s2", 6)]  # e.g. stamped in seconds, not milliseconds
    with Upstream() as upstream:
        upstream.script(poll=body(*seconds, event("new", 6000)))
        async with server(upstream) as client:
            with captured_logs() as logs:
                page = await poll(client, "5000")
    assert [e["event_id"] for e in page["events"]] == ["new"]
    warned = [entry for entry in logs if entry["event"] == "events_older_than_asked"]
    assert len(warned) == 1 and warned[0]["count"] == 2 and warned[0]["log_level"] == "warning"


async def test_an_answer_whose_message_is_an_object_comes_as_its_json_text() -> None:
    shaped = {"text": "the answer", "items": [1, 2]}
    odd = event("answer", 6000, "message", message_id="m", message=shaped)
    with Upstream() as upstream:
        upstream.script(poll=body(odd))
        async with server(upstream) as client:
            page = await poll(client, "1000")
            asked = await client.call_tool("ask", {"message": "hi"})
    assert page["answer"] is not None and json.loads(page["answer"]) == shaped
    answer_text = (asked.structured_content or {}).get("answer")
    assert answer_text is not None and json.loads(answer_text) == shaped, text_of(asked)


@pytest.mark.parametrize("status", [204, 200])
async def test_an_empty_answer_to_a_poll_is_no_events_and_to_other_calls_a_shape_error(status: int) -> None:
    with Upstream() as upstream:
        upstream.script(poll=Scripted(status, b""), create=Scripted(status, b""))
        async with server(upstream) as client:
            page = await poll(client, "1000")
            created = await client.call_tool("create_session", {})
    assert page["events"] == [] and page["status"] == "running"
    assert created.is_error and "FlowHunt" in text_of(created)


@contextmanager
def captured_logs() -> Iterator[list[dict[str, Any]]]:
    """structlog's entries during the block; afterwards structlog is unconfigured again, as in a library's host."""
    try:
        with structlog.testing.capture_logs() as entries:
            yield entries
    finally:
        structlog.reset_defaults()
