"""The cursor's schedule state and clock skew: carried across calls, validated on decode, narrowed by polls."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from flow_mcp.config import Settings
from flow_mcp.errors import InvalidArgumentError
from flow_mcp.flowhunt.cursor import Cursor, decode_cursor, skew_shown
from flow_mcp.flowhunt.follow import took_poll
from flow_mcp.flowhunt.schedule import Pace, Schedule
from flow_mcp.flowhunt.send import start_cursor
from flow_mcp.flowhunt.timings import Timings
from flow_mcp.flowhunt.turn import TurnProgress, WaitingFor, status_of
from flow_mcp.flowhunt.wire import RawEvent

NOW = 1_800_000_000_000  # our clock
SETTLE = 1_500


def event(event_id: str, at: int, action: str = "agent_cot", role: str = "ai", **meta: Any) -> RawEvent:
    return RawEvent(event_id=event_id, created_at_timestamp=at, action_type=action, event_type=role, metadata=meta)


def cursor_text(state: dict[str, Any]) -> str:
    """A cursor string with ``state`` as its body, as encode() writes one."""
    return "c1." + base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")


def test_a_cursor_carries_the_schedules_pace_and_the_clock_across_calls() -> None:
    pace = Pace(NOW, 1.5, "v3_tool_call_start", NOW - 40, open=(("search", NOW - 40),), tool="search")
    cursor = Cursor(timestamp=NOW - 40, clock_skew_ms=-1_234, clock_skew_slack_ms=87, pace=pace)
    again = decode_cursor(cursor.encode())
    assert again == cursor


def test_a_cursor_of_an_earlier_version_has_no_pace_and_no_slack() -> None:
    old = decode_cursor(cursor_text({"t": NOW, "k": -20, "o": ["search"]}))
    assert old.pace == Pace() and old.clock_skew_slack_ms == 0 and old.clock_skew_ms == -20
    assert decode_cursor(str(NOW)).pace == Pace()


@pytest.mark.parametrize(
    "extra",
    [
        {"z": "pace"},
        {"z": [1]},
        {"z": [9, None, None, None, None, [], [], "", []]},
        {"z": [1, None, None, None, None, [["t", "x"]], [], "", []]},
        {"z": [1, None, None, None, None, [], [], "", [["t", -1]]]},
        {"z": [1, None, -3, None, None, [], [], "", []]},
        {"z": [1, None, None, None, None, [], [], "t" * 10_000, []]},
        {"ks": -1},
        {"ks": True},
        {"ks": 10**12},
        {"ks": "5"},
    ],
)
def test_a_hostile_schedule_state_in_a_cursor_is_an_invalid_argument(extra: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        decode_cursor(cursor_text({"t": NOW, **extra}))


def test_a_poll_narrows_the_clock_skew_down_to_how_soon_it_saw_an_event() -> None:
    # FlowHunt's clock 5 s ahead; the invoke took 300 ms: the skew is known to 300 ms.
    cursor = start_cursor(sent_at=NOW + 5_000 + 10, started=NOW, now=NOW + 300)
    assert cursor is not None and cursor.clock_skew_ms == 4_710 and cursor.clock_skew_slack_ms == 300
    seen = cursor.advanced([event("a", NOW + 5_000 + 900)], None, NOW + 920, SETTLE).cursor
    assert seen.clock_skew_ms == 4_980 and seen.clock_skew_slack_ms == 30  # stamped at most 20 ms before we had it
    later = seen.advanced([event("b", NOW + 5_000 + 1_500)], None, NOW + 2_500, SETTLE).cursor
    assert later.clock_skew_ms == 4_980  # an event seen late proves less: the skew stays


def test_no_stamp_moves_the_skew_past_what_the_invoke_round_trip_allows() -> None:
    cursor = start_cursor(sent_at=NOW + 10, started=NOW, now=NOW + 300)
    assert cursor is not None
    wrong = cursor.advanced([event("a", NOW + 400_000)], None, NOW + 500, SETTLE).cursor  # a clock gone wrong
    assert wrong.clock_skew_ms == NOW + 10 - (NOW + 300) + 300 and wrong.clock_skew_slack_ms == 0
    assert Cursor(timestamp=5).skew_at_least(10**6).clock_skew_ms == 0  # no slack known: nothing moves


def test_what_a_batch_shows_of_the_skew_counts_only_events_stamped_in_time() -> None:
    cursor = Cursor(timestamp=NOW - 100)
    taken = cursor.take([event("a", NOW - 30), event("b", NOW + 10**9)], now_ms=NOW)
    assert skew_shown(taken, NOW) == -30
    assert skew_shown(cursor.take([], now_ms=NOW), NOW) is None


@pytest.mark.parametrize("ahead_ms", [5_000, -5_000], ids=["flowhunt-ahead", "flowhunt-behind"])
@pytest.mark.parametrize("invoke_work_ms", [0, 300])
@pytest.mark.parametrize("answer_seen_after_ms", [5, 400, 1_400])
def test_a_turn_never_completes_before_its_settle_window_whatever_flowhunts_clock_says(
    ahead_ms: int, invoke_work_ms: int, answer_seen_after_ms: int
) -> None:
    """FlowHunt's clock off by 5 s either way; an invoke answered late; the answer seen soon or late: the turn counts
    as completed only once the settle window has passed since the answer became visible, and soon after that."""
    sent, trip = NOW, 20
    stamp0 = sent + trip // 2 + ahead_ms  # FlowHunt stamps the message when it arrives
    cursor = start_cursor(stamp0, started=sent, now=sent + trip + invoke_work_ms)
    assert cursor is not None
    # A first event seen promptly narrows the skew; then the answer, visible at `visible` on our clock.
    cursor = cursor.advanced([event("load", stamp0 + 200, "loading")], None, sent + 215, SETTLE).cursor
    visible = sent + 1_000
    answer = event("a", visible + ahead_ms, "message", message="Done.")
    seen_at = visible + answer_seen_after_ms
    cursor = cursor.advanced([answer], None, seen_at, SETTLE).cursor
    for now in range(seen_at, visible + SETTLE, 25):
        assert status_of(cursor.progress, now, SETTLE) == "running", now - visible
    assert status_of(cursor.progress, visible + SETTLE + 30, SETTLE) == "completed"


def test_the_largest_cursor_a_turn_can_leave_decodes() -> None:
    """Every field at its cap, in characters JSON escapes to twelve (outside the BMP): 48 tool calls of long
    unicode names (32 of them left open, in the turn and in the schedule's pace), 16 long unicode ids in the newest
    millisecond, a failure's long unicode message. What encode() writes, decode_cursor takes back."""
    wide = "\U0001f600" * 60
    starts = [event(f"s{i}", NOW + 10 + i, "v3_tool_call_start", tool_name=f"{wide}{i:04d}") for i in range(48)]
    ends = [event(f"e{i}", NOW + 100 + i, "v3_tool_call_end", tool_name=f"{wide}{i:04d}") for i in range(16)]
    crowd = [event(f"{wide}{i:04d}", NOW + 200, "agent_cot") for i in range(15)]
    failed = event("f", NOW + 200, "failed", message=wide * 10)
    cursor = start_cursor(NOW, NOW - 5, NOW)
    assert cursor is not None
    schedule = Schedule.of(Settings(api_key=None), Timings())
    taken = took_poll(schedule, cursor, [*starts, *ends, *crowd, failed], sent_ms=NOW + 300, now_ms=NOW + 300)
    assert len(taken.events) == 80
    text = taken.cursor.encode()
    assert decode_cursor(text).encode() == text  # carried texts are cut, so compare what a next call reads


def test_a_cursor_with_every_field_at_its_cap_decodes() -> None:
    wide = "\U0001f600"
    name = [f"{wide * 60}{i:04d}" for i in range(32)]
    pace = Pace(
        NOW,
        10.0,
        wide * 40,
        NOW,
        open=tuple((n, NOW) for n in name),
        tool=wide * 64,
        gaps=((wide * 40, 10**6),) * 8,
        took=tuple((n, 10**6) for n in name[:8]),
    )
    waiting = WaitingFor(kind=wide * 500, prompt=wide * 500, hook_id=wide * 500, link=wide * 500)
    progress = TurnProgress(True, tuple(name), "waiting_for_input", wide * 500, waiting, NOW)
    cursor = Cursor(
        timestamp=NOW,
        seen_at_timestamp=frozenset(name[:16]),
        progress=progress,
        clock_skew_ms=-(10**12),
        clock_skew_slack_ms=600_000,
        pace=pace,
        lookback_ms=2_000,
        seen_before=frozenset((NOW - 1 - i % 2_000, f"#{i:012x}") for i in range(984)),
        seen_ahead=frozenset((NOW + 10**9 + i, f"#{i:012x}") for i in range(50)),
    )
    assert decode_cursor(cursor.encode()) == cursor


def test_a_pace_holding_the_largest_poll_budget_settings_allow_comes_back_from_its_cursor() -> None:
    # FLOW_MCP_POLL_RATE 100 x FLOW_MCP_POLL_BUDGET_SECONDS 60: a cursor the server wrote must never be refused.
    cursor = Cursor(timestamp=NOW, pace=Pace(NOW, 6_000.0, "agent_cot", NOW))
    assert decode_cursor(cursor.encode()).pace == cursor.pace


def test_a_forged_gap_of_no_time_is_refused_on_decode_not_met_later_as_a_crash() -> None:
    state = json.loads(
        base64.urlsafe_b64decode(Cursor(timestamp=NOW, pace=Pace(NOW, 1.0, "agent_cot", NOW)).encode()[3:] + "==")
    )
    state["z"][6] = [["agent_cot", 0]]
    with pytest.raises(InvalidArgumentError):
        decode_cursor(cursor_text(state))
