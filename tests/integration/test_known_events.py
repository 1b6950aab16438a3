"""A poll leaves out the events its caller has already (``seen``), before it reads them further; answered over HTTP.

Each poll looks back over the last seconds, so most of what it brings was delivered before: those events are not
validated, cleaned or logged again, and a poll that brings nothing else counts as an empty one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from flow_mcp.errors import ResponseShapeError
from flow_mcp.flowhunt.client import FlowHuntClient
from flow_mcp.flowhunt.cursor import Cursor
from flow_mcp.flowhunt.wire import RawEvent

from ..support.servers import SECRET_KEY
from ..support.upstream import Scripted, Upstream
from .test_attack_findings import captured_logs
from .test_fuzz import upstream_settings

pytestmark = pytest.mark.anyio


def body(*items: Any) -> bytes:
    return json.dumps(list(items)).encode()


OLD = {"event_id": "e-old", "created_at_timestamp": "2000", "action_type": "message", "event_type": "human"}
NEW = {"event_id": "e-new", "created_at_timestamp": 2001, "action_type": "message", "event_type": "ai"}


def delivered_old() -> Cursor:
    _, cursor = Cursor(timestamp=1000).accept([RawEvent.model_validate(OLD)], now_ms=10**13)
    return cursor


async def test_a_poll_leaves_out_what_the_caller_has_and_keeps_the_rest() -> None:
    cursor = delivered_old()
    with Upstream() as upstream:
        upstream.script(poll=Scripted(200, body(OLD, NEW)))
        async with FlowHuntClient(upstream_settings(upstream)) as client:
            everything = await client.poll("sess-1", cursor.query_timestamp())
            fresh = await client.poll("sess-1", cursor.query_timestamp(), seen=cursor.delivered)
    assert [e.event_id for e in everything] == ["e-old", "e-new"]
    assert [e.event_id for e in fresh] == ["e-new"]
    assert cursor.accept(everything, now_ms=10**13) == cursor.accept(fresh, now_ms=10**13)


async def test_a_poll_that_brings_only_known_events_is_logged_as_an_empty_one() -> None:
    cursor = delivered_old()
    with Upstream() as upstream, captured_logs() as entries:
        async with FlowHuntClient(upstream_settings(upstream)) as client:
            upstream.script(poll=Scripted(200, body(OLD)))
            assert await client.poll("sess-1", cursor.query_timestamp(), seen=cursor.delivered) == []
            upstream.script(poll=Scripted(200, body(OLD, NEW)))
            assert len(await client.poll("sess-1", cursor.query_timestamp(), seen=cursor.delivered)) == 1
    levels = [entry["log_level"] for entry in entries if entry["event"] == "flowhunt_request"]
    assert levels == ["debug", "info"]


async def test_known_events_still_show_that_an_answer_held_events() -> None:
    # A list holding nothing that looks like an event is a shape error (retried); one whose events were all known
    # before, beside an item that is no event, is an answer with nothing new in it.
    cursor = delivered_old()
    with Upstream() as upstream:
        async with FlowHuntClient(upstream_settings(upstream)) as client:
            upstream.script(poll=Scripted(200, body(OLD, {"junk": 1})))
            assert await client.poll("sess-1", cursor.query_timestamp(), seen=cursor.delivered) == []
            upstream.script(poll=Scripted(200, body({"junk": 1})))
            with pytest.raises(ResponseShapeError):
                await client.poll("sess-1", cursor.query_timestamp(), seen=cursor.delivered)


async def test_an_event_whose_id_holds_the_key_is_read_as_before_not_matched_raw() -> None:
    # Ids are remembered as cleaned; a raw id that cleaning would change is never taken for a remembered one.
    raw = {"event_id": f"id-{SECRET_KEY}", "created_at_timestamp": 2000}
    with Upstream() as upstream:
        upstream.script(poll=Scripted(200, body(raw)))
        async with FlowHuntClient(upstream_settings(upstream)) as client:
            first = await client.poll("sess-1", "1000")
            _, cursor = Cursor(timestamp=1000).accept(first, now_ms=10**13)
            again = await client.poll("sess-1", cursor.query_timestamp(), seen=cursor.delivered)
    assert [e.event_id for e in first] == ["id-[redacted]"]
    assert [e.event_id for e in again] == ["id-[redacted]"]  # passed on to the cursor, which drops it
    assert cursor.accept(again, now_ms=10**13)[0] == []
