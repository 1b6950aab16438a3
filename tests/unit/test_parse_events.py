"""parse_events keeps what is an event, whatever else a poll's answer carries, and drops the rest."""

from __future__ import annotations

from typing import Any

from flow_mcp.flowhunt.client import parse_events


def test_parse_events_keeps_events_and_drops_what_is_not_an_event() -> None:
    items: list[Any] = [
        1,
        "text",
        None,
        [],
        {"event_id": "", "created_at_timestamp": "5"},
        {"event_id": "no-timestamp"},
        {"event_id": "neg", "created_at_timestamp": "-5"},
        {"event_id": "a", "created_at_timestamp": "17", "action_type": "brand_new", "metadata": ["x"], "extra": 1},
        {"event_id": 9, "created_at_timestamp": 18, "credits": "lots", "event_type": None},
    ]
    events = parse_events(items, session_id="s")
    assert [e.event_id for e in events] == ["a", "9"]
    assert events[0].action_type == "brand_new" and events[0].metadata == ["x"]
    assert events[0].model_extra == {"extra": 1}
    assert events[1].created_at_timestamp == 18 and events[1].credits == 0.0 and events[1].event_type == ""


def test_parse_events_survives_absurd_credits() -> None:
    events = parse_events([{"event_id": "a", "created_at_timestamp": "1", "credits": 10**400}], session_id="s")
    assert [e.credits for e in events] == [0.0]
