"""timings.py: what a key's turns teach the schedule, learned per key with a pooled prior, in bounded memory."""

from __future__ import annotations

import math

import pytest

from flow_mcp.flowhunt.timings import CLOCK_MEMORY_MS, MIN_SIGMA, ClockFloor, Durations, Spread, Timings


def durations(**bounds: int) -> Durations:
    return Durations(Spread(math.log(3.0), 0.3), default_between=1.0, **bounds)


def test_a_key_never_seen_gets_the_defaults_before_anything_is_learned() -> None:
    learned = durations()
    guess = learned.predict("search_docs")
    assert guess.median_s == pytest.approx(3.0)
    assert guess.sigma == pytest.approx(math.sqrt(1.0 + 0.3**2))  # keys differ, and a key's calls differ too


def test_a_key_learns_its_own_duration_and_grows_sure_of_it() -> None:
    learned = durations()
    spreads = []
    for _ in range(12):
        learned.learn("read_file", 0.8)
        spreads.append(learned.predict("read_file").sigma)
    assert learned.predict("read_file").median_s == pytest.approx(0.8, rel=0.05)
    assert spreads == sorted(spreads, reverse=True) and spreads[-1] < 0.2


def test_a_key_that_varies_is_predicted_with_its_spread() -> None:
    learned = durations()
    for seconds in (1.0, 2.0, 4.0) * 6:
        learned.learn("build", seconds)
    guess = learned.predict("build")
    assert guess.median_s == pytest.approx(2.0, rel=0.1) and guess.sigma > 0.4


def test_a_key_never_seen_is_predicted_from_what_all_keys_have_in_common() -> None:
    learned = durations()
    for name, seconds in (("a", 10.0), ("b", 12.0), ("c", 8.0)):
        for _ in range(8):
            learned.learn(name, seconds)
    guess = learned.predict("new_tool")
    assert 6.0 < guess.median_s < 11.0  # the pooled prior moved from the 3 s default towards the keys' ~10 s
    assert guess.sigma > learned.predict("a").sigma  # and it is less sure than about a key it knows


def test_identical_samples_still_leave_the_narrowest_spread() -> None:
    learned = durations()
    for _ in range(40):
        learned.learn("exact", 2.0)
    assert learned.predict("exact").sigma >= MIN_SIGMA


@pytest.mark.parametrize("seconds", [0.0, -1.0, 1e-6, 10 * 86_400.0, math.inf, math.nan])
def test_durations_that_make_no_sense_are_not_learned(seconds: float) -> None:
    learned = durations()
    learned.learn("tool", seconds)
    assert learned.samples("tool") == 0 and learned.predict("tool") == learned.predict(None)


def test_each_key_keeps_only_its_latest_samples() -> None:
    learned = durations(max_samples=4)
    for _ in range(10):
        learned.learn("tool", 1.0)
    for _ in range(4):
        learned.learn("tool", 8.0)
    assert learned.samples("tool") == 4
    assert learned.predict("tool").median_s == pytest.approx(8.0, rel=0.1)  # the old 1 s calls are forgotten


def test_the_least_recently_used_key_is_forgotten_first() -> None:
    learned = durations(max_keys=3)
    for name in ("a", "b", "c"):
        learned.learn(name, 1.0)
    learned.predict("a")  # a prediction counts as a use
    learned.learn("d", 1.0)
    assert len(learned) == 3
    assert learned.samples("b") == 0 and learned.samples("a") == learned.samples("c") == learned.samples("d") == 1


def test_memory_stays_bounded_whatever_the_names() -> None:
    learned = durations(max_keys=50, max_samples=8)
    for index in range(5_000):
        learned.learn(f"tool-{index % 300}", 1.0 + index % 7)
    assert len(learned) == 50
    assert all(learned.samples(f"tool-{index}") <= 8 for index in range(300))


def test_a_narrower_key_refines_a_broader_prediction() -> None:
    learned = durations()
    broad = Spread(math.log(0.5), 0.8)
    assert learned.refine(broad, "edit@search") == broad  # nothing known: the broad prediction stands
    for _ in range(10):
        learned.learn("edit@search", 0.15)
    narrow = learned.refine(broad, "edit@search")
    assert narrow.median_s < 0.2 and narrow.sigma < broad.sigma


def test_how_often_a_kind_is_followed_is_counted_and_stays_recent() -> None:
    learned = durations(max_samples=4)
    assert learned.follow_chance("start") == pytest.approx(0.5)
    for _ in range(40):
        learned.count_follow("start", followed=False)
    assert learned.follow_chance("start") < 0.1
    for _ in range(40):
        learned.count_follow("start", followed=True)
    assert learned.follow_chance("start") > 0.8  # the old counts were halved away


def test_the_clock_floor_keeps_the_highest_recent_bound_and_forgets_old_ones() -> None:
    clock = ClockFloor()
    assert clock.floor(1_000) is None
    clock.seen(-250, 1_000)
    clock.seen(-400, 2_000)  # a looser bound says nothing new
    assert clock.floor(3_000) == -250
    assert clock.floor(1_000 + CLOCK_MEMORY_MS + 1) is None
    clock.seen(-300, 1_000 + CLOCK_MEMORY_MS + 1)  # past its memory, the next bound replaces it
    assert clock.floor(1_000 + CLOCK_MEMORY_MS + 2) == -300


def test_timings_learn_tools_and_gaps_apart() -> None:
    timings = Timings()
    timings.tools.learn("x", 20.0)
    assert timings.gaps.samples("x") == 0 and timings.tools.samples("x") == 1
