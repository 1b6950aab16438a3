"""The sweep's plan (turns packed into lanes) and its verdicts on issue 13's targets."""

from __future__ import annotations

import itertools

import pytest

pytest.importorskip("psutil", reason="the bench's extra: pip install -e '.[bench]'")

from bench.sweep import GAP_S, plan  # after the skip: bench needs its extra
from bench.sweep_report import verdicts


def test_every_turn_is_planned_once_and_turns_of_a_lane_do_not_overlap() -> None:
    counts = {"tool_1s": 4, "single": 5, "stream_fast": 3}
    turns = plan(list(counts), counts, seed=3, lanes=3, settle_s=1.5)
    assert sorted((t.shape, t.index) for t in turns) == sorted((s, i) for s, n in counts.items() for i in range(n))
    for lane in range(3):
        mine = sorted((t for t in turns if t.lane == lane), key=lambda t: t.start_s)
        for before, after in itertools.pairwise(mine):
            assert after.start_s == pytest.approx(before.start_s + before.length_s + 1.5 + GAP_S)
    assert {t.lane for t in turns} == {0, 1, 2}


def test_the_plan_is_the_same_for_the_same_seed_and_differs_for_another() -> None:
    counts = {"mix": 6}
    first = plan(["mix"], counts, seed=1, lanes=2, settle_s=1.5)
    assert first == plan(["mix"], counts, seed=1, lanes=2, settle_s=1.5)
    assert first != plan(["mix"], counts, seed=2, lanes=2, settle_s=1.5)


def _figures(p50: float, polls: float, completion: float) -> dict[str, float | None]:
    return {"latency_p50_ms": p50, "polls_per_turn": polls, "completion_p95_ms": completion}


def test_latency_needs_both_halving_the_desktop_loop_and_a_quarter_of_the_fixed_loop() -> None:
    reference = {"desktop": _figures(400, 10, 300), "fixed_2s": _figures(1000, 5, 1000)}
    met = verdicts({**reference, "ask": _figures(200, 10, 1650), "chain": _figures(250, 11, 1651)}, settle_ms=1500)
    assert met["ask"] == {"latency": True, "polls": True, "completion": True}
    assert met["chain"] == {"latency": False, "polls": False, "completion": False}
    slow_fixed = {"desktop": _figures(400, 10, 300), "fixed_2s": _figures(700, 5, 1000)}
    assert verdicts({**slow_fixed, "ask": _figures(180, 1, 0)}, settle_ms=1500)["ask"]["latency"] is False


def test_a_loop_with_no_events_measured_gets_no_latency_verdict() -> None:
    reference = {"desktop": _figures(400, 10, 300), "fixed_2s": _figures(1000, 5, 1000)}
    silent = {"latency_p50_ms": None, "polls_per_turn": 3, "completion_p95_ms": None}
    found = verdicts({**reference, "ask": silent}, settle_ms=1500)
    assert found["ask"] == {"latency": None, "polls": True, "completion": None}
