"""Property: whatever order, batching and duplication the events arrive in, a turn's status never goes back."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flow_mcp.flowhunt.cursor import Cursor
from flow_mcp.flowhunt.turn import advance, latch_completed, status_of
from flow_mcp.flowhunt.wire import RawEvent

SETTLE_MS = 100
ENDED = {"completed", "failed", "waiting_for_input", "session_closed"}

STEPS: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "loading": [("loading", "ai", {"loading_desc": "Working"})],
    "tool": [
        ("v3_tool_call_start", "ai", {"tool_name": "search_docs", "agent_query": "q"}),
        ("v3_tool_call_end", "ai", {"tool_name": "search_docs", "tool_response": "r", "duration_ms": 5}),
    ],
    "edit": [("add_component", "flow_assistant_action", {"component_type": "ChatInput"})],
    "answer": [("message", "ai", {"message": "done"})],
    "failed": [("failed", "system", {"message": "boom"})],
    "hook": [("hook_waiting_for_input", "flow_assistant_action", {"hook_id": "h", "prompt_message": "?"})],
    "unknown": [("quantum_leap", "observer", {"x": [1, 2]})],
    "closed": [("session_closed", "system", {})],
}


@st.composite
def turns(draw: st.DrawFn) -> list[RawEvent]:
    """A turn's events: steps in order, timestamps that never go back and often collide."""
    steps = draw(st.lists(st.sampled_from(sorted(STEPS)), min_size=1, max_size=12))
    events: list[RawEvent] = []
    stamp = 1
    for step in steps:
        for kind, role, meta in STEPS[step]:
            stamp += draw(st.integers(min_value=0, max_value=2))
            events.append(
                RawEvent(
                    event_id=f"e{len(events)}",
                    created_at_timestamp=stamp,
                    action_type=kind,
                    event_type=role,
                    metadata=meta,
                )
            )
    return events


@settings(max_examples=400, deadline=None)
@given(events=turns(), seed=st.integers(min_value=0, max_value=2**32), inclusive=st.booleans())
def test_the_status_never_goes_back_to_running_once_the_turn_ended(
    events: list[RawEvent], seed: int, inclusive: bool
) -> None:
    rng = random.Random(seed)
    last = events[-1].created_at_timestamp
    cursor, now, seen_ended, delivered = Cursor(timestamp=0), 0, False, 0
    # Repeated reveal points make quiet polls, in which a settle window can pass.
    for reveal in sorted([rng.randint(1, last) for _ in range(8)] + [last, last]):
        visible = [e for e in events if e.created_at_timestamp <= reveal]
        bound = int(cursor.query_timestamp())
        batch = [
            e for e in visible if e.created_at_timestamp > bound or (inclusive and e.created_at_timestamp == bound)
        ]
        batch += rng.sample(visible, k=min(len(visible), rng.randint(0, 2)))  # re-sent duplicates
        rng.shuffle(batch)
        fresh, cursor = cursor.accept(batch)
        delivered += len(fresh)
        now += rng.choice([0, SETTLE_MS // 2, SETTLE_MS * 2])  # sometimes the settle window passes
        progress = latch_completed(advance(cursor.progress, fresh, now), now, SETTLE_MS)
        cursor = cursor.with_progress(progress)
        status = status_of(progress, now, SETTLE_MS)
        assert not (seen_ended and status == "running")
        seen_ended = seen_ended or status in ENDED
    assert delivered == len(events)
