"""The pure turn logic of turns.py (and the event summaries it relies on), on hand-made event sequences."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flow_mcp.errors import InvalidArgumentError
from flow_mcp.flowhunt.cursor import Cursor, decode_cursor
from flow_mcp.flowhunt.digest import TurnDigest, truncate
from flow_mcp.flowhunt.events import normalize, summarize
from flow_mcp.flowhunt.turn import TurnProgress, advance, latch_completed, settles_at, status_of
from flow_mcp.flowhunt.wire import RawEvent

SETTLE = 1000


def ev(event_id: str, ts: int, action: str = "agent_cot", role: str = "ai", meta: Any = None, **extra: Any) -> RawEvent:
    data: dict[str, Any] = {
        "event_id": event_id,
        "created_at_timestamp": str(ts),
        "action_type": action,
        "event_type": role,
        "metadata": {} if meta is None else meta,
    }
    data.update(extra)
    return RawEvent.model_validate(data)


def answer(event_id: str, ts: int, text: str = "Done.", credits: float = 0.0) -> RawEvent:
    return ev(event_id, ts, "message", "ai", {"message_id": "m", "message": text}, credits=credits)


def human(event_id: str, ts: int, text: str = "Hi") -> RawEvent:
    return ev(event_id, ts, "message", "human", {"message_id": "m", "message": text})


def tool_start(event_id: str, ts: int, name: str = "search_docs") -> RawEvent:
    return ev(event_id, ts, "v3_tool_call_start", "ai", {"tool_name": name, "agent_query": "q"})


def tool_end(event_id: str, ts: int, name: str = "search_docs", **meta: Any) -> RawEvent:
    body: dict[str, Any] = {"tool_name": name, "agent_query": "q", "tool_response": "ok"}
    body.update(meta)
    return ev(event_id, ts, "v3_tool_call_end", "ai", body)


# ---------------------------------------------------------------------------------------------
# A FlowHunt stand-in: events become visible in timestamp order, events of one millisecond together


@dataclass
class FakeServer:
    events: list[RawEvent]
    inclusive: bool
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    shuffle: bool = False
    duplicates: bool = False
    visible_until: int = -1

    def reveal(self, until: int) -> None:
        self.visible_until = max(self.visible_until, until)

    def poll(self, from_timestamp: str) -> list[RawEvent]:
        start = int(from_timestamp)
        visible = [e for e in self.events if e.created_at_timestamp <= self.visible_until]
        batch = [
            e
            for e in visible
            if (e.created_at_timestamp >= start if self.inclusive else e.created_at_timestamp > start)
        ]
        if self.duplicates and visible:
            # Old events sent again, and events of this batch repeated inside it.
            batch += self.rng.sample(visible, self.rng.randint(1, len(visible)))
        if self.shuffle:
            self.rng.shuffle(batch)
        return batch


def follow(
    server: FakeServer, reveals: Sequence[int], polls_per_reveal: Callable[[], int], start: Cursor
) -> list[RawEvent]:
    cursor = start
    delivered: list[RawEvent] = []
    for until in reveals:
        server.reveal(until)
        for _ in range(polls_per_reveal()):
            fresh, cursor = cursor.accept(server.poll(cursor.query_timestamp()))
            delivered.extend(fresh)
    fresh, cursor = cursor.accept(server.poll(cursor.query_timestamp()))  # a last poll after everything is out
    delivered.extend(fresh)
    return delivered


def assert_exactly_once_in_order(delivered: Sequence[RawEvent], emitted: Sequence[RawEvent]) -> None:
    ids = [e.event_id for e in delivered]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert set(ids) == {e.event_id for e in emitted}, "an event was lost"
    stamps = [e.created_at_timestamp for e in delivered]
    assert stamps == sorted(stamps)


def crowded_events() -> list[RawEvent]:
    """Thirty events over a few milliseconds, up to five in one millisecond."""
    stamps = [100, 100, 101, 103, 103, 103, 103, 103, 104, 107, 107, 108, 108, 108, 110]
    stamps += [111, 111, 111, 111, 115, 116, 116, 117, 120, 120, 120, 121, 125, 125, 130]
    return [ev(f"e{i:02d}", ts) for i, ts in enumerate(stamps)]


READINGS = pytest.mark.parametrize("inclusive", [False, True], ids=["exclusive", "inclusive"])


@READINGS
@pytest.mark.parametrize("shuffle", [False, True], ids=["ordered", "shuffled"])
@pytest.mark.parametrize("duplicates", [False, True], ids=["unique", "duplicated"])
def test_events_revealed_progressively_are_delivered_once_in_order(
    inclusive: bool, shuffle: bool, duplicates: bool
) -> None:
    emitted = crowded_events()
    server = FakeServer(list(emitted), inclusive, random.Random(3), shuffle=shuffle, duplicates=duplicates)
    stamps = sorted({e.created_at_timestamp for e in emitted})
    rng = random.Random(5)
    delivered = follow(server, stamps, lambda: rng.randint(0, 3), Cursor(timestamp=99))
    assert_exactly_once_in_order(delivered, emitted)


@READINGS
def test_events_sharing_a_millisecond_revealed_together_are_delivered_in_one_batch(inclusive: bool) -> None:
    emitted = [ev("a", 10), ev("b", 10), ev("c", 10), ev("d", 11), ev("e", 11)]
    server = FakeServer(list(emitted), inclusive)
    cursor = Cursor(timestamp=9)
    server.reveal(10)
    first, cursor = cursor.accept(server.poll(cursor.query_timestamp()))
    assert [e.event_id for e in first] == ["a", "b", "c"]
    assert cursor.timestamp == 10 and cursor.seen_at_timestamp == {"a", "b", "c"}
    again, cursor = cursor.accept(server.poll(cursor.query_timestamp()))
    assert again == []
    server.reveal(11)
    second, cursor = cursor.accept(server.poll(cursor.query_timestamp()))
    assert [e.event_id for e in second] == ["d", "e"]
    assert cursor.seen_at_timestamp == {"d", "e"}


def test_a_millisecond_split_across_two_polls_keeps_the_ids_already_seen() -> None:
    cursor = Cursor(timestamp=9)
    first, cursor = cursor.accept([ev("a", 10)])
    second, cursor = cursor.accept([ev("a", 10), ev("b", 10)])
    assert [e.event_id for e in first] == ["a"]
    assert [e.event_id for e in second] == ["b"]
    assert cursor.timestamp == 10 and cursor.seen_at_timestamp == {"a", "b"}


def test_a_shuffled_batch_comes_out_oldest_first_and_ties_keep_their_order() -> None:
    batch = [ev("c", 12), ev("a", 10), ev("x", 11), ev("b", 10), ev("y", 11)]
    fresh, cursor = Cursor(timestamp=0).accept(batch)
    assert [e.event_id for e in fresh] == ["a", "b", "x", "y", "c"]
    assert cursor.timestamp == 12 and cursor.seen_at_timestamp == {"c"}


def test_duplicates_inside_one_batch_are_delivered_once() -> None:
    fresh, _ = Cursor(timestamp=0).accept([ev("a", 5), ev("a", 5), ev("b", 6), ev("a", 5)])
    assert [e.event_id for e in fresh] == ["a", "b"]


def test_older_events_sent_again_are_dropped() -> None:
    _, cursor = Cursor(timestamp=0).accept([ev("a", 5), ev("b", 6)])
    fresh, after = cursor.accept([ev("a", 5), ev("b", 6), ev("c", 7)])
    assert [e.event_id for e in fresh] == ["c"]
    assert after.timestamp == 7


def test_an_empty_batch_leaves_the_cursor_unchanged() -> None:
    cursor = Cursor(timestamp=42, seen_at_timestamp=frozenset({"x"}))
    fresh, after = cursor.accept([])
    assert fresh == [] and after == cursor


@READINGS
def test_cursor_zero_replays_the_whole_session(inclusive: bool) -> None:
    emitted = crowded_events()
    server = FakeServer(list(emitted), inclusive)
    server.reveal(10_000)
    cursor = decode_cursor("0")
    assert cursor.query_timestamp() == "0"
    fresh, cursor = cursor.accept(server.poll(cursor.query_timestamp()))
    assert_exactly_once_in_order(fresh, emitted)
    assert cursor.accept(server.poll(cursor.query_timestamp()))[0] == []


def test_query_timestamp_is_one_millisecond_early_and_never_negative() -> None:
    assert Cursor(timestamp=1_700_000_000_123).query_timestamp() == "1700000000122"
    assert Cursor(timestamp=1).query_timestamp() == "0"
    assert Cursor(timestamp=0).query_timestamp() == "0"


@st.composite
def sessions(draw: st.DrawFn) -> tuple[list[RawEvent], list[int], int]:
    stamps = draw(st.lists(st.integers(min_value=1, max_value=25), min_size=0, max_size=40))
    events = [ev(f"id{i}", ts) for i, ts in enumerate(stamps)]
    distinct = sorted(set(stamps))
    reveals = sorted(draw(st.lists(st.sampled_from(distinct), unique=True))) if distinct else []
    reveals += distinct[-1:]  # in the end, everything is out
    return events, reveals, draw(st.integers(min_value=0, max_value=2**32))


@settings(max_examples=300, deadline=None)
@given(
    session=sessions(),
    inclusive=st.booleans(),
    shuffle=st.booleans(),
    duplicates=st.booleans(),
)
def test_any_reveal_order_and_batching_delivers_every_event_exactly_once(
    session: tuple[list[RawEvent], list[int], int], inclusive: bool, shuffle: bool, duplicates: bool
) -> None:
    emitted, reveals, seed = session
    rng = random.Random(seed)
    server = FakeServer(list(emitted), inclusive, random.Random(seed), shuffle=shuffle, duplicates=duplicates)
    rng.shuffle(server.events)  # storage order says nothing about time
    delivered = follow(server, reveals, lambda: rng.randint(0, 2), decode_cursor("0"))
    assert_exactly_once_in_order(delivered, emitted)


# ---------------------------------------------------------------------------------------------
# Encoding and decoding


def test_an_encoded_cursor_decodes_to_the_same_position_and_progress() -> None:
    progress = TurnProgress(
        answered=True, open_tools=("search_docs", "run_flow"), outcome="completed", last_event_ms=1_700_000_000_999
    )
    cursor = Cursor(timestamp=1_700_000_000_500, seen_at_timestamp=frozenset({"a", "b-2"}), progress=progress)
    text = cursor.encode()
    assert text.startswith("c1.") and text.isascii()
    assert decode_cursor(text) == cursor
    assert decode_cursor(f"  {text}\n") == cursor


def test_a_fresh_cursor_round_trips() -> None:
    cursor = Cursor(timestamp=7)
    assert decode_cursor(cursor.encode()) == cursor


@pytest.mark.parametrize("ending", ["failed", "waiting"])
def test_a_decoded_cursor_keeps_why_the_turn_ended(ending: str) -> None:
    events = {
        "failed": [ev("f", 1, "failed", "system", {"message": "the flow could not be validated"})],
        "waiting": [ev("w", 1, "integration_missing", "flow_assistant_action", WAITING["integration_missing"][0])],
    }[ending]
    progress = advance(TurnProgress(), events, now_ms=5)
    decoded = decode_cursor(Cursor(timestamp=1, progress=progress).encode())
    assert decoded.progress == progress
    assert status_of(decoded.progress, 10, SETTLE) == status_of(progress, 10, SETTLE)


@pytest.mark.parametrize("text", ["0", "1700000000123", "00042", " 12 ", "9" * 20])
def test_raw_digit_strings_are_accepted_as_cursors(text: str) -> None:
    assert decode_cursor(text) == Cursor(timestamp=int(text))


def encoded(state: Any) -> str:
    return "c1." + base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")


MALFORMED_CURSORS = {
    "empty": "",
    "blank": "   ",
    "letters": "abc",
    "digits and letters": "12a",
    "negative raw": "-5",
    "too many digits": "9" * 21,
    "decimal": "1.5",
    "bad base64": "c1.!!!",
    "prefix only": "c1.",
    "not json": "c1." + base64.urlsafe_b64encode(b"not json").decode(),
    "not utf-8": "c1." + base64.urlsafe_b64encode(b"\xff\xfe\xfa").decode(),
    "a json list": encoded([1, 2, 3]),
    "a json string": encoded("t"),
    "no timestamp": encoded({"i": ["a"]}),
    "negative timestamp": encoded({"t": -1}),
    "string timestamp": encoded({"t": "5"}),
    "float timestamp": encoded({"t": 5.5}),
    "bool timestamp": encoded({"t": True}),
    "null timestamp": encoded({"t": None}),
    "ids not a list": encoded({"t": 5, "i": "abc"}),
    "ids of numbers": encoded({"t": 5, "i": [1, 2]}),
    "ids of objects": encoded({"t": 5, "i": [{"id": "a"}]}),
    "open tools of numbers": encoded({"t": 5, "o": [3]}),
    "unknown outcome": encoded({"t": 5, "s": "exploded"}),
    "list outcome": encoded({"t": 5, "s": ["completed"]}),
    "string last event": encoded({"t": 5, "l": "9"}),
    "huge": "c1." + "A" * 10_000,
    "other version": "c2." + encoded({"t": 5})[3:],
}


@pytest.mark.parametrize("text", list(MALFORMED_CURSORS.values()), ids=list(MALFORMED_CURSORS))
def test_malformed_cursors_raise_invalid_argument(text: str) -> None:
    with pytest.raises(InvalidArgumentError):
        decode_cursor(text)


def test_a_deeply_nested_cursor_raises_invalid_argument() -> None:
    text = "c1." + base64.urlsafe_b64encode(b"[" * 6000).decode().rstrip("=")
    assert len(text) < 8192
    with pytest.raises(InvalidArgumentError):
        decode_cursor(text)


# ---------------------------------------------------------------------------------------------
# Turn status


def fold(events: Sequence[RawEvent], now_ms: int, progress: TurnProgress | None = None) -> TurnProgress:
    """Fold events seen as they happen: each stamped with the moment it is folded in."""
    seen_now = [event.model_copy(update={"created_at_timestamp": now_ms}) for event in events]
    return advance(progress or TurnProgress(), seen_now, now_ms)


def test_a_turn_runs_until_an_answer_has_settled() -> None:
    progress = fold([human("h", 1), tool_start("s", 2), tool_end("e", 3)], now_ms=1000)
    assert status_of(progress, 5000, SETTLE) == "running"  # no answer yet
    progress = advance(progress, [answer("a", 1800)], now_ms=2000)
    assert progress.last_event_ms == 1800  # the window runs from when the answer happened
    assert status_of(progress, 2000, SETTLE) == "running"
    assert status_of(progress, 2799, SETTLE) == "running"
    assert status_of(progress, 2800, SETTLE) == "completed"
    assert settles_at(progress, SETTLE) == 2800


def test_an_event_timestamp_is_read_on_our_clock_and_never_later_than_now() -> None:
    long_ago = advance(TurnProgress(), [answer("a", 4)], now_ms=2000)
    assert long_ago.last_event_ms == 4
    from_the_future = advance(TurnProgress(), [answer("a", 9000)], now_ms=2000)
    assert from_the_future.last_event_ms == 2000
    # FlowHunt's clock 5 s ahead of ours: its 7000 is our 2000.
    skewed = advance(TurnProgress(), [answer("a", 7000)], now_ms=2500, clock_skew_ms=5000)
    assert skewed.last_event_ms == 2000


def test_an_open_tool_call_keeps_an_answered_turn_running() -> None:
    progress = fold([answer("a", 1), tool_start("s", 2, "run_flow")], now_ms=1000)
    assert progress.open_tools == ("run_flow",)
    assert status_of(progress, 100_000, SETTLE) == "running"
    assert settles_at(progress, SETTLE) is None
    progress = fold([tool_end("e", 3, "run_flow")], now_ms=4000, progress=progress)
    assert status_of(progress, 4999, SETTLE) == "running"
    assert status_of(progress, 5000, SETTLE) == "completed"


def test_tool_calls_with_the_same_name_close_one_at_a_time() -> None:
    progress = fold([tool_start("s1", 1), tool_start("s2", 2), answer("a", 3), tool_end("e1", 4)], now_ms=0)
    assert progress.open_tools == ("search_docs",)
    assert status_of(progress, 10_000, SETTLE) == "running"
    progress = fold([tool_end("e2", 5)], now_ms=0, progress=progress)
    assert progress.open_tools == ()
    assert status_of(progress, 10_000, SETTLE) == "completed"


def test_new_events_restart_the_settle_window() -> None:
    progress = fold([answer("a", 1)], now_ms=1000)
    progress = fold([ev("cot", 2)], now_ms=1900, progress=progress)
    assert status_of(progress, 2000, SETTLE) == "running"
    assert settles_at(progress, SETTLE) == 2900
    assert fold([], now_ms=5000, progress=progress) == progress  # an empty poll is not activity


def test_a_system_message_is_not_an_answer() -> None:
    progress = fold([ev("s", 1, "message", "system", {"message": "hello"})], now_ms=0)
    assert not progress.answered
    assert status_of(progress, 10_000, SETTLE) == "running"


def test_a_failure_ends_the_turn_with_its_text() -> None:
    failed = ev("f", 2, "failed", "system", {"message": "The flow could not be validated."})
    progress = fold([answer("a", 1), failed], now_ms=0)
    assert status_of(progress, 0, SETTLE) == "failed"
    assert progress.error == "The flow could not be validated."


def test_a_failure_without_details_still_says_it_failed() -> None:
    progress = fold([ev("f", 1, "failed", "system", None)], now_ms=0)
    assert status_of(progress, 0, SETTLE) == "failed"
    assert progress.error


WAITING = {
    "hook_waiting_for_input": (
        {"hook_id": "hook-1", "hook_name": "choose_model", "prompt_message": "Which model?"},
        {"prompt": "Which model?", "hook_id": "hook-1", "link": None},
    ),
    "hitl_approval_requested": (
        {"hook_id": "hook-2", "hitl_id": "h", "tool_name": "delete_component", "tool_args": {}},
        {"prompt": "Approve running delete_component", "hook_id": "hook-2", "link": None},
    ),
    "integration_missing": (
        {"slug": "google-sheets", "integration_url": "https://app.flowhunt.io/integrations/google-sheets"},
        {"prompt": None, "hook_id": None, "link": "https://app.flowhunt.io/integrations/google-sheets"},
    ),
    "file_access_required": (
        {"document_id": "d", "document_type": "google_drive", "message": "Grant access."},
        {"prompt": "Grant access.", "hook_id": None, "link": None},
    ),
}


@pytest.mark.parametrize("action", list(WAITING))
def test_waiting_events_put_the_turn_in_waiting_for_input(action: str) -> None:
    meta, expected = WAITING[action]
    progress = fold([tool_start("s", 1), ev("w", 2, action, "flow_assistant_action", meta)], now_ms=0)
    assert status_of(progress, 0, SETTLE) == "waiting_for_input"
    assert progress.waiting_for is not None
    assert progress.waiting_for.kind == action
    assert progress.waiting_for.model_dump(exclude={"kind"}) == expected
    # Later events do not take the turn out of waiting.
    progress = fold([answer("a", 3)], now_ms=0, progress=progress)
    assert status_of(progress, 10_000, SETTLE) == "waiting_for_input"


def test_hitl_approval_prefers_the_tool_description_as_prompt() -> None:
    meta = {"hook_id": "h", "tool_name": "delete_component", "tool_description": "Delete the old Chat Input"}
    progress = fold([ev("w", 1, "hitl_approval_requested", "flow_assistant_action", meta)], now_ms=0)
    assert progress.waiting_for is not None and progress.waiting_for.prompt == "Delete the old Chat Input"


def test_session_closed_ends_the_turn_even_after_completion() -> None:
    progress = fold([answer("a", 1)], now_ms=0)
    progress = latch_completed(progress, SETTLE, SETTLE)
    assert progress.outcome == "completed"
    closed = ev("c", 2, "session_closed", "system", {"message": "Closed for idling."})
    progress = fold([closed], now_ms=0, progress=progress)
    assert status_of(progress, 0, SETTLE) == "session_closed"
    assert progress.error == "Closed for idling."


def test_session_closed_without_text_says_so() -> None:
    progress = fold([ev("c", 1, "session_closed", "system", [])], now_ms=0)
    assert status_of(progress, 0, SETTLE) == "session_closed" and progress.error


def test_latch_completed_keeps_a_completed_turn_completed() -> None:
    progress = fold([answer("a", 1)], now_ms=1000)
    assert latch_completed(progress, 1500, SETTLE) == progress  # not settled yet: nothing to latch
    latched = latch_completed(progress, 2000, SETTLE)
    assert latched.outcome == "completed"
    later = advance(latched, [tool_start("s", 2), ev("cot", 3)], now_ms=2100)
    assert status_of(later, 2100, SETTLE) == "completed"
    assert settles_at(later, SETTLE) is None
    assert latch_completed(later, 2100, SETTLE) == later


def test_events_after_an_unlatched_answer_can_reopen_the_turn() -> None:
    progress = fold([answer("a", 1)], now_ms=1000)
    assert status_of(progress, 2000, SETTLE) == "completed"
    progress = fold([tool_start("s", 2)], now_ms=2100, progress=progress)
    assert status_of(progress, 5000, SETTLE) == "running"


@pytest.mark.parametrize(
    "ending",
    [
        [answer("a", 2)],
        [ev("f", 2, "failed", "system", {"message": "boom"})],
        [ev("w", 2, "hook_waiting_for_input", "flow_assistant_action", {"prompt_message": "?"})],
    ],
    ids=["answered", "failed", "waiting"],
)
def test_a_human_message_starts_a_new_turn(ending: list[RawEvent]) -> None:
    progress = latch_completed(fold([tool_start("s", 1), *ending], now_ms=0), 10_000, SETTLE)
    progress = fold([human("h", 3)], now_ms=20_000, progress=progress)
    assert progress == TurnProgress(last_event_ms=20_000)
    assert status_of(progress, 100_000, SETTLE) == "running"


def test_settles_at_is_none_until_the_turn_can_complete() -> None:
    assert settles_at(TurnProgress(), SETTLE) is None
    assert settles_at(fold([ev("cot", 1)], now_ms=10), SETTLE) is None
    assert settles_at(fold([answer("a", 1)], now_ms=10), SETTLE) == 10 + SETTLE
    assert settles_at(fold([answer("a", 1), ev("f", 2, "failed")], now_ms=10), SETTLE) is None


# ---------------------------------------------------------------------------------------------
# Summaries

# Representative metadata of every documented action type, from the API description.
DOCUMENTED: dict[str, tuple[str, Any]] = {
    "loading": ("ai", {"message_id": "m", "tool_name": "search_docs", "loading_desc": "Searching the docs"}),
    "message": ("ai", {"message_id": "m", "message": "Here it is.", "sender": {"sender_name": "Flow Assistant"}}),
    "tool_call": ("ai", {"tool_name": "search_docs", "agent_query": "q", "tool_response": "r"}),
    "task_response": ("ai", {"task_name": "Plan", "task_input": "i", "agent": "a", "task_response": "r"}),
    "failed": ("system", {"message": "Could not validate the flow."}),
    "message_feedback": ("system", {}),
    "artefacts": ("ai", {"artefacts": [{"id": "1", "name": "a.txt", "path": "/a.txt", "size": 3}]}),
    "agent_cot": ("ai", {"cot_id": "c", "content": "Thinking about it."}),
    "todo_list": ("ai", {"todo_id": "t", "todos": [{"content": "x", "status": "pending"}]}),
    "attachment": ("human", {"file_id": "f", "file_name": "notes.pdf", "file_type": "pdf"}),
    "v3_tool_call_start": ("ai", {"tool_name": "search_docs", "agent_query": "q"}),
    "v3_tool_call_end": (
        "ai",
        {"tool_name": "search_docs", "agent_query": "q", "tool_response": "r", "duration_ms": 1500},
    ),
    "v3_flow_assistant_init": ("system", {"stage": "ready", "message": "Ready"}),
    "hook_waiting_for_input": ("flow_assistant_action", {"hook_id": "h", "hook_name": "n", "prompt_message": "Which?"}),
    "evaluate_client_js": (
        "flow_assistant_action",
        {"hook_id": "h", "hook_name": "n", "script": "1", "request_id": "r"},
    ),
    "session_closed": ("system", {"message": "Closed."}),
    "agent_initialized": ("system", {"agent_name": "Flow Assistant", "agent_type": "t", "model": "GPT4.1"}),
    "subagent_prompt": ("ai", {"task": "Find docs", "started_by": "main", "target_agent": "researcher"}),
    "hitl_approval_requested": (
        "flow_assistant_action",
        {"hook_id": "h", "tool_name": "delete_component", "tool_args": {}},
    ),
    "integration_missing": ("flow_assistant_action", {"slug": "google-sheets", "integration_url": "https://x"}),
    "file_access_required": ("flow_assistant_action", {"document_id": "d", "document_type": "google_drive"}),
    "add_component": (
        "flow_assistant_action",
        {"action_id": "a", "component_id": "c1", "component_type": "ChatInput", "component_display_name": "ChatInput"},
    ),
    "delete_component": ("flow_assistant_action", {"action_id": "a", "component_id": "c1", "component_type": "LLM"}),
    "connect_components": ("flow_assistant_action", {"action_id": "a", "source_component_id": "a"}),
    "update_component": (
        "flow_assistant_action",
        {"action_id": "a", "component_id": "c1", "component_type": "LLM", "parameter_values": {"t": 1}},
    ),
    "add_connection": (
        "flow_assistant_action",
        {"action_id": "a", "source_component_id": "s", "target_component_id": "t"},
    ),
    "delete_connection": (
        "flow_assistant_action",
        {"action_id": "a", "source_component_id": "s", "target_component_id": "t"},
    ),
    "create_blank_flow": ("flow_assistant_action", {"flow_name": "Support bot", "flow_id": "f"}),
}


@pytest.mark.parametrize("action", list(DOCUMENTED))
def test_every_documented_action_type_has_a_one_line_summary(action: str) -> None:
    role, meta = DOCUMENTED[action]
    summary = summarize(ev("x", 1, action, role, meta))
    assert summary.strip() and summary == summary.strip()
    assert "\n" not in summary and len(summary) <= 200
    assert not summary.startswith("Event:")  # the generic summary is for unknown types only


@pytest.mark.parametrize(
    ("action", "role", "meta", "expected"),
    [
        ("v3_tool_call_start", "ai", {"tool_name": "search_docs"}, "Calling tool search_docs"),
        (
            "v3_tool_call_end",
            "ai",
            {"tool_name": "search_docs", "duration_ms": 1500},
            "Tool search_docs finished in 1.5 s",
        ),
        ("v3_tool_call_end", "ai", {"tool_name": "search_docs"}, "Tool search_docs finished"),
        ("add_component", "flow_assistant_action", DOCUMENTED["add_component"][1], "Added component ChatInput"),
        ("add_component", "flow_assistant_action", {"component_type": "LLMOpenAI"}, "Added component LLMOpenAI"),
        ("delete_component", "flow_assistant_action", {}, "Removed component a component"),
        ("message", "ai", {"message": "Here."}, "Answer ready"),
        ("message", "human", {"message": "Hi"}, "Message received"),
        ("message", "system", {"message": "Hi"}, "System message"),
        ("loading", "ai", {"loading_desc": "Searching the docs"}, "Searching the docs"),
        ("failed", "system", {"message": "boom"}, "Failed: boom"),
        ("todo_list", "ai", {"todos": [1, 2, 3]}, "Plan updated (3 items)"),
        ("task_response", "ai", {}, "Task finished"),
        ("create_blank_flow", "flow_assistant_action", {"flow_name": "Bot"}, "Created flow Bot"),
        ("integration_missing", "flow_assistant_action", {"slug": "slack"}, "Integration needed: slack"),
    ],
)
def test_summaries_say_what_happened(action: str, role: str, meta: Any, expected: str) -> None:
    assert summarize(ev("x", 1, action, role, meta)) == expected


JUNK_METADATA: list[Any] = [
    None,
    [],
    [1, "two", {"three": 3}],
    "a bare string",
    "",
    42,
    3.5,
    True,
    {},
    {
        "tool_name": ["not", "a", "string"],
        "message": {"nested": {"deeper": [None, {}]}},
        "duration_ms": "fast",
        "todos": "not a list",
        "artefacts": {"a": 1},
        "component_display_name": {"x": 1},
        "component_type": None,
        "stage": 7,
        "prompt_message": [],
        "tool_response": {"nested": [1, 2, {"x": None}]},
        "agent_query": ["q"],
    },
    {"duration_ms": True, "tool_name": "", "message": "   ", "flow_name": False},
    {"duration_ms": float("nan"), "tool_name": 12.5},
    {"duration_ms": -3, "todos": [None]},
]


@pytest.mark.parametrize("action", [*DOCUMENTED, "quantum_leap", "", "Message", "v4_something_new"])
@pytest.mark.parametrize("meta", JUNK_METADATA, ids=lambda meta: type(meta).__name__)
def test_no_action_type_or_metadata_shape_makes_the_turn_logic_fail(action: str, meta: Any) -> None:
    for role in ("ai", "human", "system", "observer"):
        event = ev("x", 1, action, role, meta)
        summary = summarize(event)
        assert summary.strip()
        assert normalize(event).type == action
        advance(TurnProgress(), [event], now_ms=0)
        TurnDigest().add(event)


def test_unknown_action_types_get_a_generic_summary() -> None:
    assert summarize(ev("x", 1, "quantum_leap", "flow_assistant_action", {"distance": 42})) == "Event: quantum leap"
    assert summarize(ev("x", 1, "", "ai", None)) == "Event: event"
    assert summarize(ev("x", 1, "quantum_leap", component_name="LLM")) == "Event: quantum leap (LLM)"


@pytest.mark.parametrize(
    ("action", "meta"),
    [
        ("v3_tool_call_start", {"tool_name": "search\ndocs"}),
        ("add_component", {"component_display_name": "Chat\nInput"}),
        ("create_blank_flow", {"flow_name": "x" * 1000}),
    ],
)
def test_summaries_stay_one_short_line_whatever_the_metadata_says(action: str, meta: Any) -> None:
    summary = summarize(ev("x", 1, action, "ai", meta))
    assert "\n" not in summary and len(summary) <= 200


def test_a_huge_duration_does_not_break_the_summary() -> None:
    event = RawEvent.model_validate(
        json.loads(
            '{"event_id": "x", "created_at_timestamp": "1", "action_type": "v3_tool_call_end",'
            ' "metadata": {"tool_name": "t", "duration_ms": 1' + "0" * 400 + "}}"
        )
    )
    assert summarize(event).startswith("Tool t finished")


def test_normalize_keeps_the_wire_fields_and_adds_summary_and_text() -> None:
    event = ev("x", 17, "message", "ai", {"message": "Hello there"}, credits=1.5, component_name="Chat")
    normalized = normalize(event)
    assert normalized.model_dump() == {
        "event_id": "x",
        "type": "message",
        "role": "ai",
        "at": 17,
        "summary": "Answer ready",
        "text": "Hello there",
        "credits": 1.5,
        "component_name": "Chat",
        "metadata": {"message": "Hello there"},
    }


# ---------------------------------------------------------------------------------------------
# The digest of a turn


def test_the_digest_collects_answers_tool_calls_edits_and_credits() -> None:
    digest = TurnDigest(tool_output_limit=10)
    events = [
        human("h", 1),
        answer("a1", 2, "Let me look.", credits=0.5),
        tool_start("s", 3),
        tool_end("e", 4, tool_response="x" * 25, duration_ms=800, agent_query="components"),
        ev("c", 4, "add_component", "flow_assistant_action", DOCUMENTED["add_component"][1], credits=0.25),
        ev("k", 5, "add_connection", "flow_assistant_action", DOCUMENTED["add_connection"][1]),
        ev("l", 5, "loading", "ai", {"loading_desc": "Working"}),
        answer("a2", 6, "Done.", credits=1),
    ]
    for event in events:
        digest.add(event)
    assert digest.messages == ["Let me look.", "Done."]
    assert digest.events_count == len(events)
    assert digest.credits == pytest.approx(1.75)
    [call] = digest.tool_calls
    assert call.name == "search_docs" and call.finished and call.duration_ms == 800.0
    assert call.input == "q"
    assert call.output == "x" * 10 + "… [truncated 15 of 25 characters]"
    assert [a.type for a in digest.actions] == ["add_component", "add_connection"]
    added = digest.actions[0]
    assert added.summary == "Added component ChatInput"
    assert added.component_id == "c1" and added.component_type == "ChatInput"
    assert "component_id" not in added.details and added.details["component_display_name"] == "ChatInput"


def test_the_digest_pairs_tool_ends_with_their_starts_and_keeps_unfinished_ones() -> None:
    digest = TurnDigest()
    for event in [
        tool_start("s1", 1, "a"),
        tool_start("s2", 2, "b"),
        tool_start("s3", 3, "a"),
        tool_end("e1", 4, "a", tool_response={"rows": [1, 2]}),
        tool_end("e2", 5, "b", duration_ms="slow"),
        ev("t", 6, "tool_call", "ai", {"tool_name": "legacy", "agent_query": "q", "tool_response": "r"}),
    ]:
        digest.add(event)
    assert [(c.name, c.finished) for c in digest.tool_calls] == [
        ("a", True),
        ("b", True),
        ("a", False),
        ("legacy", True),
    ]
    assert digest.tool_calls[0].output == '{"rows": [1, 2]}'
    assert digest.tool_calls[1].duration_ms is None
    assert digest.tool_calls[3].output == "r"


def test_the_digest_keeps_the_newest_items_within_its_bound() -> None:
    digest = TurnDigest(max_items=3)
    for i in range(10):
        digest.add(answer(f"a{i}", i, f"answer {i}"))
        digest.add(tool_start(f"s{i}", i, f"tool{i}"))
        digest.add(ev(f"c{i}", i, "delete_component", "flow_assistant_action", {"component_id": f"c{i}"}))
    assert digest.messages == ["answer 7", "answer 8", "answer 9"]
    assert [c.name for c in digest.tool_calls] == ["tool7", "tool8", "tool9"]
    assert [a.component_id for a in digest.actions] == ["c7", "c8", "c9"]
    assert digest.events_count == 30


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly10!", 10, "exactly10!"),
        ("abcdefghijk", 10, "abcdefghij… [truncated 1 of 11 characters]"),
        ("abc", 0, "… [truncated 3 of 3 characters]"),
    ],
)
def test_truncate_says_how_much_was_cut(text: str, limit: int, expected: str) -> None:
    assert truncate(text, limit) == expected
