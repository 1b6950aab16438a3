"""schedule.py: when to poll next, from the turn so far and the key's learned timings (pure, no clock of its own)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from flow_mcp.config import Settings
from flow_mcp.flowhunt.schedule import (
    FOLLOW_UP_AIM_MS,
    MAX_OPEN,
    PERSON,
    TOOL_END,
    TURN_SAMPLES,
    Pace,
    Schedule,
    Source,
    pace_from_state,
    pace_state,
)
from flow_mcp.flowhunt.timings import MIN_SIGMA, Spread, Timings
from flow_mcp.flowhunt.turn import TurnProgress
from flow_mcp.flowhunt.wire import RawEvent

SETTINGS = Settings(api_key=None)
START = 1_800_000_000_000  # FlowHunt's stamp of the person's message; our clock is the same in these tests
IDLE = TurnProgress()
WORKING = TurnProgress(open_tools=("search",))


def event(event_id: str, at: int, action: str = "agent_cot", role: str = "ai", **meta: Any) -> RawEvent:
    return RawEvent(event_id=event_id, created_at_timestamp=at, action_type=action, event_type=role, metadata=meta)


def schedule(timings: Timings | None = None, **overrides: Any) -> Schedule:
    return Schedule.of(Settings(api_key=None, **overrides), timings or Timings())


def learned_tool(name: str, seconds: float, times: int = 12) -> Timings:
    """Timings that learned ``name``'s duration, and that a tool's start is followed by nothing but its end."""
    timings = Timings()
    for _ in range(times):
        timings.tools.learn(name, seconds)
    for _ in range(30):
        timings.gaps.count_follow("v3_tool_call_start", followed=False)
    return timings


def running(name: str, started: int, polled: int) -> Pace:
    """A turn with one open call of ``name`` that started at ``started``, last polled at ``polled``."""
    return Pace(polled_ms=polled, last_kind="v3_tool_call_start", last_at_ms=started, open=((name, started),))


# -- when to poll ----------------------------------------------------------------------------------------------


def test_a_turn_whose_pace_is_unknown_is_polled_at_once() -> None:
    assert schedule().due(Pace(), IDLE, START + 5, 0) == START + 5


def test_the_first_poll_after_the_message_waits_for_the_first_event_the_key_expects() -> None:
    timings = Timings()
    for _ in range(12):
        timings.gaps.learn(PERSON, 0.8)
    due = schedule(timings).due(Pace.after_message(START, START), IDLE, START, 0)
    assert START + 500 < due < START + 1000  # around the 0.8 s learned, not at once


def test_a_tool_whose_duration_is_learned_is_left_alone_until_near_its_end() -> None:
    plan = schedule(learned_tool("search", 4.0))
    due = plan.due(running("search", START, START + 100), WORKING, START + 100, 0)
    assert START + 2_000 < due < START + 4_300


def test_an_unknown_tool_is_looked_at_sooner_than_one_known_to_take_long() -> None:
    unknown = schedule().due(running("search", START, START + 100), WORKING, START + 100, 0)
    known = schedule(learned_tool("search", 8.0)).due(running("search", START, START + 100), WORKING, START + 100, 0)
    assert unknown < known


def test_the_schedule_polls_densely_where_an_end_is_likely_and_sparsely_elsewhere() -> None:
    plan = schedule(learned_tool("search", 4.0))
    polls, polled = [], START + 100
    while polled < START + 6_000:  # the tool does not end: follow the schedule's polls
        polled = plan.due(running("search", START, polled), WORKING, polled, 0)
        polls.append(polled - START)
    near = [p for p in polls if 3_000 <= p <= 5_000]
    assert len(near) >= 4 and len([p for p in polls if p < 3_000]) <= 1


def test_a_tool_end_soon_followed_by_an_edit_is_polled_for_after_the_edit() -> None:
    quick, slow = learned_tool("search", 4.0), learned_tool("search", 4.0)
    for _ in range(12):
        quick.gaps.learn(TOOL_END, 0.2)
        quick.gaps.count_follow(TOOL_END, followed=True)
        slow.gaps.learn(TOOL_END, 2 * FOLLOW_UP_AIM_MS / 1000)
        slow.gaps.count_follow(TOOL_END, followed=True)
    pace = running("search", START, START + 100)
    (quick_end, _), (slow_end, _) = schedule(quick).sources(pace, 0), schedule(slow).sources(pace, 0)
    assert slow_end.origin == START  # an edit that comes late is not waited for
    assert START + 150 < quick_end.origin < START + 210  # one poll brings the end and its edit


def test_this_turns_tempo_outweighs_what_other_turns_taught() -> None:
    timings = Timings()
    for _ in range(30):
        timings.gaps.learn("agent_cot", 0.2)
    base = Pace(polled_ms=START + 50, last_kind="agent_cot", last_at_ms=START)
    slow_turn = Pace(START + 50, None, "agent_cot", START, gaps=(("agent_cot", 1_000),) * 3)
    plan = schedule(timings)
    assert plan.due(base, IDLE, START + 50, 0) < START + 350
    assert START + 700 < plan.due(slow_turn, IDLE, START + 50, 0) < START + 1_100


def test_a_follow_up_while_a_tool_runs_counts_only_as_often_as_one_came() -> None:
    timings = learned_tool("search", 20.0)
    for _ in range(30):
        timings.gaps.learn("v3_tool_call_start", 0.2)
        timings.gaps.count_follow("v3_tool_call_start", followed=False)  # the tool's end always came first
    due = schedule(timings).due(running("search", START, START + 100), WORKING, START + 100, 0)
    assert due > START + 2_000  # no burst of polls for a follow-up that never comes


@pytest.mark.parametrize(
    ("pace", "progress", "cap"),
    [(running("x", START, START), WORKING, 5_000), (Pace(START, None, "agent_cot", START), IDLE, 1_000)],
)
def test_a_pause_never_exceeds_its_cap(pace: Pace, progress: TurnProgress, cap: int) -> None:
    timings = Timings()
    for _ in range(20):
        timings.tools.learn("x", 600.0)
        timings.gaps.learn("agent_cot", 600.0)
    assert schedule(timings).due(pace, progress, START, 0) <= START + cap


def test_polls_never_come_closer_than_the_shortest_pause() -> None:
    timings = Timings()
    for _ in range(20):
        timings.gaps.learn("agent_cot", 0.011)
    pace = Pace(polled_ms=START + 2, last_kind="agent_cot", last_at_ms=START)
    assert schedule(timings).due(pace, IDLE, START + 2, 0) >= START + 2 + 50


def test_an_answer_waiting_for_its_settle_window_is_polled_once_when_the_window_closes() -> None:
    answered = TurnProgress(answered=True, last_event_ms=START + 700)
    pace = Pace(polled_ms=START + 800, last_kind="message", last_at_ms=START + 700)
    assert schedule().due(pace, answered, START + 800, 0) == START + 700 + 1_500 + 1


def test_stamps_are_read_on_our_clock_with_the_skew() -> None:
    plan = schedule(learned_tool("search", 4.0))
    ahead = 60_000  # FlowHunt's clock a minute ahead: its stamps are a minute later than ours
    pace = running("search", START + ahead, START + 100)
    assert (
        abs(
            plan.due(pace, WORKING, START + 100, ahead)
            - plan.due(running("search", START, START + 100), WORKING, START + 100, 0)
        )
        <= 1
    )


def test_the_budget_spaces_polls_out_once_it_is_spent() -> None:
    plan = schedule(poll_rate=2.0, poll_budget_seconds=2.0)  # 4 polls saved up, then one every 0.5 s
    pace = Pace.after_message(START, START)
    for _ in range(4):
        pace = plan.observed(pace, [], sent_ms=START)
    assert pace.tokens == pytest.approx(0.0)
    assert plan.due(pace, IDLE, START, 0) >= START + 500
    later = plan.observed(pace, [], sent_ms=START + 1_000)  # two polls' worth came back, one was spent
    assert later.tokens == pytest.approx(1.0)


def test_a_source_that_cannot_fire_yet_has_not_fired() -> None:
    source = Source(origin=1_000.0, parts=[(1.0, Spread(math.log(2.0), 0.2))], chance=0.5)
    assert source.left(500.0) == 1.0 and source.left(1_000.0) == 1.0
    assert source.left(1_000.0 + 2_000.0) == pytest.approx(0.75)  # at the median: half of its chance
    assert source.left(1_000.0 + 10**9) == pytest.approx(0.5)  # it fires at most with its chance


def test_a_pace_polled_later_than_now_waits_no_longer_than_one_polled_now() -> None:
    """A cursor from a replica whose clock runs an hour ahead (or one forged so) says its last poll is still to
    come: read as polled now, not as a reason to wait an hour (or to the end of a poll_events wait)."""
    ahead = Pace(polled_ms=START + 3_600_000, tokens=0.0, last_kind=PERSON, last_at_ms=START)
    now = Pace(polled_ms=START, tokens=0.0, last_kind=PERSON, last_at_ms=START)
    assert schedule().due(ahead, IDLE, START, 0) == schedule().due(now, IDLE, START, 0) <= START + 1_000


def test_a_narrow_source_far_from_its_median_has_not_fired_and_does_not_overflow() -> None:
    """A tool that always took a minute, to the millisecond, is learned as narrowly as a spread goes; a moment
    after its start, (median / elapsed) ** shape is past what a float holds."""
    source = Source(origin=1_000.0, parts=[(1.0, Spread(math.log(60.0), MIN_SIGMA))])
    assert source.left(1_000.0001) == 1.0


# -- what a poll brought ---------------------------------------------------------------------------------------


def test_a_tool_call_is_learned_from_its_start_and_end_stamps() -> None:
    plan = schedule()
    pace = plan.observed(
        Pace.after_message(START, START),
        [event("s", START + 200, "v3_tool_call_start", tool_name="search")],
        sent_ms=START + 300,
    )
    assert pace.open == (("search", START + 200),) and pace.tool == "search"
    end = event("e", START + 1_200, "v3_tool_call_end", tool_name="search", duration_ms=900)
    pace = plan.observed(pace, [end], sent_ms=START + 1_300)
    assert pace.open == () and pace.took == (("search", 1_000),)  # as stamped: what the schedule predicts
    assert plan.timings.tools.samples("search") == 1
    assert plan.timings.tools.predict("search").median_s < 2.0  # from the 3 s default towards the 1 s seen


def test_a_tool_end_stamped_before_its_start_is_learned_from_its_duration() -> None:
    plan = schedule()
    pace = running("search", START + 5_000, START + 5_100)
    end = event("e", START + 4_000, "v3_tool_call_end", tool_name="search", duration_ms=1_500)
    pace = plan.observed(pace, [end], sent_ms=START + 5_200)
    assert pace.took == (("search", 1_500),)


def test_follow_up_gaps_are_learned_by_kind_and_by_kind_after_a_tool() -> None:
    plan = schedule()
    pace = Pace(polled_ms=START, last_kind=TOOL_END, last_at_ms=START, tool="search")
    pace = plan.observed(pace, [event("u", START + 180, "update_component")], sent_ms=START + 200)
    assert pace.gaps == ((TOOL_END, 180),) and pace.last_kind == "update_component"
    assert plan.timings.gaps.samples(TOOL_END) == 1 and plan.timings.gaps.samples(f"{TOOL_END}@search") == 1
    assert plan.timings.gaps.follow_chance(TOOL_END) > 0.5


def test_events_of_one_burst_teach_no_gap() -> None:
    plan = schedule()
    pace = Pace(polled_ms=START, last_kind="agent_cot", last_at_ms=START)
    pace = plan.observed(pace, [event("a", START + 3), event("b", START + 6)], sent_ms=START + 50)
    assert pace.gaps == () and plan.timings.gaps.samples("agent_cot") == 0 and pace.last_at_ms == START + 6


def test_a_tool_end_that_came_first_counts_against_a_follow_up() -> None:
    plan = schedule()
    pace = running("search", START, START + 100)
    plan.observed(pace, [event("e", START + 4_000, "v3_tool_call_end", tool_name="search")], sent_ms=START + 4_100)
    assert plan.timings.gaps.follow_chance("v3_tool_call_start") < 0.5
    assert plan.timings.gaps.samples("v3_tool_call_start") == 0


def test_a_persons_message_starts_the_pace_afresh() -> None:
    plan = schedule()
    pace = Pace(START, 3.0, "agent_cot", START, open=(("x", START),), tool="x", gaps=(("agent_cot", 100),))
    fresh = plan.observed(pace, [event("h", START + 9_000, "message", "human", message="again")], sent_ms=START)
    assert fresh.open == () and fresh.gaps == () and fresh.tool == "" and fresh.last_kind == PERSON
    assert fresh.last_at_ms == START + 9_000


def test_an_event_made_visible_late_leaves_the_newest_event_as_it_was() -> None:
    plan = schedule()
    pace = Pace(polled_ms=START, last_kind="update_component", last_at_ms=START + 5_000)
    pace = plan.observed(pace, [event("old", START + 1_000)], sent_ms=START + 5_100)
    assert pace.last_kind == "update_component" and pace.last_at_ms == START + 5_000


def test_the_pace_keeps_a_bounded_memory_of_the_turn() -> None:
    plan = schedule()
    pace = Pace.after_message(START, START)
    batch = [event(f"s{i}", START + 20 * i, "v3_tool_call_start", tool_name=f"t{i}") for i in range(1, 60)]
    pace = plan.observed(pace, batch, sent_ms=START + 2_000)
    assert len(pace.open) == MAX_OPEN and len(pace.gaps) <= TURN_SAMPLES


# -- the pace in the cursor ------------------------------------------------------------------------------------


def test_the_pace_round_trips_through_its_state() -> None:
    pace = Pace(
        polled_ms=START,
        tokens=2.37,
        last_kind="update_component",
        last_at_ms=START - 10,
        open=(("search", START - 900),),
        tool="search",
        gaps=(("v3_tool_call_end", 180),),
        took=(("read", 1_200),),
    )
    assert pace_from_state(pace_state(pace)) == pace
    assert pace_from_state(pace_state(Pace())) == Pace()


@pytest.mark.parametrize(
    "state",
    [
        None,
        [],
        [2, None, None, None, None, [], [], "", []],  # a version this code does not know
        [1, "1", None, None, None, [], [], "", []],
        [1, -5, None, None, None, [], [], "", []],
        [1, None, 10**6, None, None, [], [], "", []],
        [1, None, True, None, None, [], [], "", []],
        [1, None, None, 7, None, [], [], "", []],
        [1, None, None, "k" * 500, None, [], [], "", []],
        [1, None, None, None, 2**60, [], [], "", []],
        [1, None, None, None, None, [["x"]], [], "", []],
        [1, None, None, None, None, [["x", "1"]], [], "", []],
        [1, None, None, None, None, [["x", 1]] * 500, [], "", []],
        [1, None, None, None, None, [], [["k", -1]], "", []],
        [1, None, None, None, None, [], [], None, []],
        [1, None, None, None, None, [], [], "", {"a": 1}],
    ],
)
def test_a_pace_state_that_is_not_one_we_wrote_is_refused(state: Any) -> None:
    with pytest.raises(ValueError):
        pace_from_state(state)


def test_a_tool_start_read_again_is_one_open_call_not_two() -> None:
    # A page cut short hands the rest of a batch out again: its starts are the calls already open.
    plan = schedule()
    start = event("s1", START + 100, "v3_tool_call_start", tool_name="search")
    pace = plan.observed(Pace(START, 8.0, "person", START), [start], sent_ms=START + 150)
    again = plan.observed(pace, [start], sent_ms=START + 300)
    assert again.open == pace.open == (("search", START + 100),)
