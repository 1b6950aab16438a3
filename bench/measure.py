"""Turning what each loop saw into figures, checked against the sandbox's own record of every event.

Latency is measured for every event of a turn except the person's own message (visible at invoke time, it says
nothing about a polling policy); the same rule holds for every loop.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.common import JSONDict, Sandbox, median, percentile
from bench.flowside import Asked, Followed


@dataclass
class Figures:
    """Raw figures of one loop on one scenario."""

    latencies_ms: list[float] = field(default_factory=list)
    completion_ms: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    polls: list[int] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    cpu_s: float = 0.0
    unmatched_events: int = 0

    def add_turn(self, truth: Sequence[JSONDict], receipts: Sequence[float | None], done_ms: float | None) -> None:
        """One turn: ``receipts[i]`` is when the loop got ``truth[i]`` (None: never)."""
        for event, received in zip(truth, receipts, strict=True):
            if _is_person(event):
                continue
            if received is None:
                self.unmatched_events += 1
            else:
                self.latencies_ms.append(received - int(event["created_at_timestamp"]))
        if done_ms is not None and truth:
            self.completion_ms.append(done_ms - max(int(e["created_at_timestamp"]) for e in truth))

    def add_requests(self, session_id: str, counts: Counter[str], polls: Counter[str] | None) -> None:
        """The turn's requests (+ the create call, which names no session) and, if known, its polls."""
        self.requests.append(counts[session_id] + 1)
        if polls is not None:
            self.polls.append(polls[session_id])

    def summary(self) -> JSONDict:
        """The figures the table and the targets use."""
        turns = len(self.requests)
        return {
            "turns": turns,
            "outcomes": dict(self.outcomes),
            "latency_p50_ms": percentile(self.latencies_ms, 50),
            "latency_p95_ms": percentile(self.latencies_ms, 95),
            "latency_max_ms": max(self.latencies_ms, default=None),
            "events_measured": len(self.latencies_ms),
            "events_missed": self.unmatched_events,
            "completion_p50_ms": percentile(self.completion_ms, 50),
            "completion_p95_ms": percentile(self.completion_ms, 95),
            "completion_max_ms": max(self.completion_ms, default=None),
            "requests_per_turn": sum(self.requests) / turns if turns else None,
            "polls_per_turn": sum(self.polls) / len(self.polls) if self.polls else None,
            "cpu_s_per_turn": self.cpu_s / turns if turns else None,
        }


def _is_person(event: JSONDict) -> bool:
    return event.get("event_type") == "human" and event.get("action_type") == "message"


def asked_figures(
    sandbox: Sandbox, asks: Sequence[Asked], counts: Counter[str], cpu_s: float, polls: Counter[str] | None = None
) -> Figures:
    """Figures of ``ask`` calls: the n-th event notification is matched to the n-th event of the turn."""
    figures = Figures(cpu_s=cpu_s)
    for asked in asks:
        figures.outcomes[asked.status if asked.error is None else "error"] += 1
        if not asked.session_id:
            continue
        truth = sandbox.events(asked.session_id)
        receipts: list[float | None] = list(asked.event_receipts())
        if len(receipts) == len(truth) - 1 and truth and _is_person(truth[0]):
            truth = truth[1:]  # the person's message was not passed on as progress
        receipts = (receipts + [None] * len(truth))[: len(truth)]
        figures.add_turn(truth, receipts, asked.done_ms)
        figures.add_requests(asked.session_id, counts, polls)
    return figures


def reference_figures(
    sandbox: Sandbox, result: JSONDict, counts: Counter[str], polls: Counter[str] | None = None
) -> Figures:
    """Figures of a reference loop's worker output."""
    figures = Figures(cpu_s=float(result["cpu_s"]))
    for turn in result["turns"]:
        figures.outcomes[turn["outcome"]] += 1
        truth = sandbox.events(turn["session_id"])
        figures.add_turn(truth, [turn["receipts"].get(e["event_id"]) for e in truth], turn["done_ms"])
        figures.add_requests(turn["session_id"], counts, polls)
    return figures


def followed_figures(
    sandbox: Sandbox, turns: Sequence[Followed], counts: Counter[str], polls: Counter[str] | None = None
) -> Figures:
    """Figures of turns whose receiver noted each event by id (followed in-process, or a poll_events chain)."""
    figures = Figures()
    for turn in turns:
        figures.outcomes[turn.status] += 1
        if not turn.session_id:
            continue
        truth = sandbox.events(turn.session_id)
        figures.add_turn(truth, [turn.receipts.get(e["event_id"]) for e in truth], turn.done_ms)
        figures.add_requests(turn.session_id, counts, polls)
    return figures


def completion_times(sandbox: Sandbox, sessions: Sequence[tuple[str, float | None]]) -> list[float]:
    """Invoke (as the sandbox stamped it) to the moment the caller had the finished turn, in ms."""
    return [done - sandbox.invoked_at(sid) for sid, done in sessions if sid and done is not None]


def ratio_of_medians(numerator: Sequence[float], denominator: Sequence[float]) -> float | None:
    """median(numerator) / median(denominator), or None when either is empty."""
    top, bottom = median(numerator), median(denominator)
    return top / bottom if top is not None and bottom else None
