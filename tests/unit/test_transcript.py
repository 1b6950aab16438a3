"""A session's transcript in Markdown: turns split at each human message, and what a waiting turn waits for."""

from __future__ import annotations

from typing import Any

from flow_mcp.flowhunt.transcript import split_turns, transcript_markdown
from flow_mcp.flowhunt.wire import RawEvent


def event(event_id: str, at: int, role: str, kind: str, **meta: Any) -> RawEvent:
    return RawEvent(event_id=event_id, created_at_timestamp=at, event_type=role, action_type=kind, metadata=meta)


def test_events_before_the_first_message_come_first_and_do_not_count_as_a_turn() -> None:
    events = [
        event("w", 1, "ai", "message", message="Welcome!"),
        event("h", 2, "human", "message", message="Hi"),
        event("a", 3, "ai", "message", message="Hello"),
    ]
    assert [turn.question for turn in split_turns(events)] == [None, "Hi"]
    markdown = transcript_markdown("s1", events)
    assert "1 turn(s), 3 event(s)" in markdown
    assert markdown.index("Welcome!") < markdown.index("## Turn 1") < markdown.index("Hello")


def test_an_empty_session_says_so_and_a_waiting_turn_says_what_it_waits_for() -> None:
    assert "Nothing has happened" in transcript_markdown("s1", [])
    waiting = [
        event("h", 1, "human", "message", message="Connect my sheet"),
        event("i", 2, "ai", "integration_missing", slug="google-sheets", integration_url="https://x.example/i"),
    ]
    markdown = transcript_markdown("s1", waiting)
    assert "Waiting for input (integration_missing)" in markdown and "https://x.example/i" in markdown
