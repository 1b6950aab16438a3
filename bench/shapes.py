"""Turn shapes for the polling sweep: what an assistant turn looks like in time, drawn with a seeded random.

One vocabulary for everything that measures polling: the real-time sweep sends a shape to the sandbox as a
``timeline:`` message (the sandbox scripts exactly those events), and the simulator replays the same steps in
virtual time. A shape is a function from a ``random.Random`` to a list of steps; every draw (tool durations,
follow-up delays, thinking gaps) varies around the shape's nominal value, so no schedule can be tuned to one
exact turn. Tool names recur within a shape (the same four names, in order), as an assistant's tools recur
across turns, and differ between shapes, so what a schedule learns about one shape's tools is not a lie about
another's.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

StepKind = Literal["start", "end", "edit", "load", "note", "answer"]


@dataclass(frozen=True)
class Step:
    """One event, ``after_ms`` after the previous one (the first: after the invoke)."""

    kind: StepKind
    after_ms: int
    tool: str | None = None


@dataclass(frozen=True)
class Shape:
    """A named family of turns."""

    name: str
    what: str
    build: Callable[[random.Random], list[Step]]


TOOL_SECONDS = (0.5, 1, 2, 3, 4, 6, 10, 20, 40)
THINKING_GAPS = (0.2, 0.5, 1, 2)
_VERBS = ("search", "read", "plan", "check")


def message(steps: Sequence[Step]) -> str:
    """The sandbox message that scripts exactly these steps."""
    tokens = [f"{step.kind}+{step.after_ms}" + (f":{step.tool}" if step.tool else "") for step in steps]
    return "timeline: " + " ".join(tokens)


def offsets_ms(steps: Sequence[Step]) -> list[int]:
    """Each step's time after the invoke."""
    clock, times = 0, []
    for step in steps:
        clock += step.after_ms
        times.append(clock)
    return times


def _ms(rng: random.Random, seconds: float, spread: float = 0.15) -> int:
    """``seconds`` varied by a log-normal factor (``spread`` is its sigma), in whole milliseconds."""
    return max(1, round(seconds * 1000 * rng.lognormvariate(0.0, spread)))


def _between(rng: random.Random, low_s: float, high_s: float) -> int:
    return round(rng.uniform(low_s, high_s) * 1000)


def _tool(steps: list[Step], name: str, gap_ms: int, duration_ms: int) -> None:
    steps.append(Step("start", gap_ms, name))
    steps.append(Step("end", duration_ms, name))


def _tools_turn(key: str, seconds: float, calls: int) -> Callable[[random.Random], list[Step]]:
    """``calls`` tool calls of about ``seconds`` each; each end followed by a flow edit 0.1-0.3 s later, the next
    tool 0.2-0.3 s after that, and the answer 0.3-0.8 s after the last edit."""

    def build(rng: random.Random) -> list[Step]:
        steps = [Step("load", _between(rng, 0.1, 0.3), f"{key}_{_VERBS[0]}")]
        for index in range(calls):
            gap = _between(rng, 0.15, 0.3) if index == 0 else _between(rng, 0.2, 0.3)
            _tool(steps, f"{key}_{_VERBS[index % len(_VERBS)]}", gap, _ms(rng, seconds))
            steps.append(Step("edit", _between(rng, 0.1, 0.3)))
        steps.append(Step("answer", _between(rng, 0.3, 0.8)))
        return steps

    return build


def _thinking_turn(key: str, gap_s: float) -> Callable[[random.Random], list[Step]]:
    """Five short tool calls (0.6-1.2 s) with thinking gaps of about ``gap_s`` between them, a thought in each."""

    def build(rng: random.Random) -> list[Step]:
        steps: list[Step] = []
        for index in range(5):
            think = _ms(rng, gap_s, 0.25)
            steps.append(Step("note", think // 2))
            _tool(steps, f"{key}_{_VERBS[index % len(_VERBS)]}", think - think // 2, _between(rng, 0.6, 1.2))
            steps.append(Step("edit", _between(rng, 0.1, 0.3)))
        steps.append(Step("answer", _ms(rng, gap_s, 0.25)))
        return steps

    return build


def _followups(rng: random.Random) -> list[Step]:
    """Four tool calls of 1-3 s, each end followed by 1-3 events 0.1-0.3 s apart."""
    steps: list[Step] = []
    for index in range(4):
        _tool(steps, f"fu_{_VERBS[index]}", _between(rng, 0.2, 0.4), _between(rng, 1.0, 3.0))
        for _ in range(rng.randint(1, 3)):
            steps.append(Step("edit", _between(rng, 0.1, 0.3)))
    steps.append(Step("answer", _between(rng, 0.1, 0.3)))
    return steps


def _stream(every_s: float, count: int) -> Callable[[random.Random], list[Step]]:
    """A steady stream: ``count`` thoughts about ``every_s`` apart, then the answer."""

    def build(rng: random.Random) -> list[Step]:
        steps = [Step("note", _ms(rng, every_s, 0.2)) for _ in range(count)]
        return [*steps, Step("answer", _ms(rng, every_s, 0.2))]

    return build


def _single(rng: random.Random) -> list[Step]:
    """Nothing but the answer, 0.3-4 s after the invoke."""
    return [Step("answer", _between(rng, 0.3, 4.0))]


def _outside(rng: random.Random) -> list[Step]:
    """The turn an outside measurement used: tool calls of 2, 4, 3 and 6 s, each end followed 0.15 s later by a
    flow edit and 0.25 s after that by the next tool call, then the answer. Exact, no jitter."""
    del rng
    steps: list[Step] = []
    for index, seconds in enumerate((2, 4, 3, 6)):
        _tool(steps, f"ox_{_VERBS[index]}", 250, seconds * 1000)
        steps.append(Step("edit", 150))
    steps.append(Step("answer", 250))
    return steps


def _label(seconds: float) -> str:
    return f"{seconds:g}".replace(".", "_")


def _calls_for(seconds: float) -> int:
    return 4 if seconds <= 4 else 3 if seconds <= 10 else 2 if seconds <= 20 else 1


SWEEP: tuple[Shape, ...] = (
    *(
        Shape(
            f"tool_{_label(s)}s",
            f"{_calls_for(s)} tool call(s) of ~{s:g} s, a flow edit 0.1-0.3 s after each",
            _tools_turn(f"tc{_label(s)}", s, _calls_for(s)),
        )
        for s in TOOL_SECONDS
    ),
    *(
        Shape(
            f"think_{_label(g)}s", f"5 short tool calls, thinking gaps of ~{g:g} s", _thinking_turn(f"th{_label(g)}", g)
        )
        for g in THINKING_GAPS
    ),
    Shape("followups", "4 tool calls of 1-3 s, 1-3 follow-ups 0.1-0.3 s apart after each", _followups),
    Shape("stream_fast", "25 thoughts ~0.2 s apart", _stream(0.2, 25)),
    Shape("stream_slow", "12 thoughts ~1 s apart", _stream(1.0, 12)),
    Shape("single", "only the answer, 0.3-4 s after the invoke", _single),
    Shape("outside", "tool calls of 2, 4, 3, 6 s; edit +0.15 s; next tool +0.25 s (exact)", _outside),
)


def _mix(rng: random.Random) -> list[Step]:
    return rng.choice(SWEEP).build(rng)


MIX = Shape("mix", "each turn drawn at random from the shapes above", _mix)
SHAPES: dict[str, Shape] = {shape.name: shape for shape in (*SWEEP, MIX)}


def draw(name: str, seed: int, turns: int) -> list[list[Step]]:
    """``turns`` turns of one shape, reproducible from ``seed``."""
    rng = random.Random(f"{name}:{seed}")
    return [SHAPES[name].build(rng) for _ in range(turns)]
