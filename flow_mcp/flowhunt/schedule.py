"""When to poll next: a pure schedule, from what the turn did so far and what the key's turns taught. No I/O.

FlowHunt has no push channel: an event reaches us with the first poll after it becomes visible, and every poll is
a request. So polls go where the next event is likely. The schedule predicts when the next event comes from the
sources that can bring it:

- every open tool call's end: its start plus what its tool name took before (``timings.py``, learned per name
  across turns and sessions), and what this turn's tool calls took, for a name seen seldom;
- the follow-up to the newest event: how soon an event of that kind was followed before (after a tool's end a
  flow edit, after an edit the next tool call), learned per kind, and per kind and tool; and how soon this turn's
  events of that kind were followed, which soon outweighs the rest (a turn keeps its tempo). While a tool call
  runs, a follow-up is only as likely as it proved to be before the tool's end came.

Each is a log-logistic distribution of the time since its origin: a log-normal's shape, with a tail that thins
out slowly, so that an event later than predicted lets the polls space out instead of crowding them. The first of
the sources to fire is the next event. The next poll comes when the delay it would add, expected over that
prediction, reaches ``lateness``: a poll at ``q`` sees an event that came at ``t < q`` ``q - t`` late, so ``q`` is
where ``E[(q - next)+ | nothing by the last poll] = lateness``. An event sure to come at ``t`` is polled at about
``t + lateness``; one that may come anywhere in a wide span gets polls spread over it, denser where it is likelier.
A tool's end is usually followed within a moment by a flow edit: its poll aims that much later, to bring both.

Then the bounds: at least ``min_ms`` between polls; at most ``idle_cap_ms`` while no tool call runs (so an answer
is seen in time for its settle window) and ``tool_cap_ms`` while one does; on average no more than ``rate`` polls
a second, with ``burst`` of them saved up in a quiet stretch for a burst of events. An answer waiting for its
settle window is polled once, when the window closes.

Everything the schedule knows about a turn rides in ``Pace``, which the cursor carries, so a chain of
``poll_events`` calls goes on where the last call left off.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from flow_mcp.config import Settings
from flow_mcp.flowhunt.events import is_person_message, milliseconds
from flow_mcp.flowhunt.timings import MIN_SIGMA, Spread, Timings
from flow_mcp.flowhunt.turn import MAX_ID_CHARS, TurnProgress, closing, settles_at, tool_key
from flow_mcp.flowhunt.wire import RawEvent

PERSON = "person"
"""The kind of a person's message: the event a turn starts from."""
TOOL_END = "v3_tool_call_end"
SAME_BURST_MS = 10
"""Events this close together came as one: the gap between them teaches nothing about when to poll."""
FOLLOW_UP_AIM_MS = 250
"""A tool's end followed by another event at most this soon (as learned) is polled for that much later."""
TURN_GAP_WEIGHT = 0.3
"""How many of this turn's own gaps all the learned gaps count for, when the two predictions are mixed."""
TURN_TOOL_WEIGHT = 1.0
"""The same for tool calls, per sample the tool's name has: a name well known is predicted by its own past."""
TEMPO_SIGMA = 0.25
"""The spread (log units) of a prediction from one sample of this turn's."""
TURN_SAMPLES = 8
"""The most recent gaps and tool durations of this turn the pace keeps."""
MAX_OPEN = 32
"""Open tool calls the pace keeps track of (as many as the cursor carries)."""
MAX_KIND_CHARS = 40
_VERSION = 1
_MAX_MS = 2**53  # what JSON carries exactly; any real epoch millisecond is far below
_LOGISTIC = math.sqrt(3) / math.pi  # the scale of a logistic distribution with a standard deviation of 1

Parts = Sequence[tuple[float, Spread]]
"""A prediction as a mixture: (weight, spread) pairs, the weights summing to 1."""


@dataclass(frozen=True)
class Pace:
    """The schedule's state for one turn: what the next decision needs, carried in the cursor between calls."""

    polled_ms: int | None = None
    """When the last poll was sent, on our clock (or the message, before the first poll); None: unknown."""
    tokens: float | None = None
    """Polls in hand at ``polled_ms`` (None: a full budget)."""
    last_kind: str | None = None
    """The kind of the newest event: its action_type, or ``PERSON``."""
    last_at_ms: int | None = None
    """When the newest event happened: its FlowHunt timestamp (read on our clock with the cursor's clock skew)."""
    open: tuple[tuple[str, int], ...] = ()
    """Open tool calls: (tool name, FlowHunt's timestamp of its start), oldest first."""
    tool: str = ""
    """The tool whose call started or ended last in this turn: the context its follow-ups are learned in."""
    gaps: tuple[tuple[str, int], ...] = ()
    """This turn's latest follow-up gaps: (kind of the event followed, milliseconds until the next one)."""
    took: tuple[tuple[str, int], ...] = ()
    """This turn's latest tool calls: (tool name, milliseconds from start to end)."""

    @classmethod
    def after_message(cls, stamp: int, sent_ms: int) -> Pace:
        """The pace of a turn whose message FlowHunt stamped ``stamp``; we sent it at ``sent_ms`` (our clock)."""
        return cls(polled_ms=sent_ms, last_kind=PERSON, last_at_ms=stamp)


def kind_of(event: RawEvent) -> str:
    """What a follow-up gap is learned by: the event's action_type, or ``PERSON`` for a person's message."""
    return PERSON if is_person_message(event) else event.action_type[:MAX_KIND_CHARS]


@dataclass(frozen=True)
class Source:
    """Something that can bring the next event: it starts at ``origin`` (our clock, ms) and fires with ``chance``,
    after a time distributed as ``parts``."""

    origin: float
    parts: Parts
    chance: float = 1.0

    def terms(self) -> list[tuple[float, float, float]]:
        """``left``'s terms: (weight times chance, median in ms, log-logistic shape), for the schedule's inner loop."""
        return [
            (self.chance * weight, spread.median_s * 1000, 1 / (spread.sigma * _LOGISTIC))
            for weight, spread in self.parts
        ]

    def left(self, at: float) -> float:
        """The chance it has not fired by ``at``."""
        return _left(self.origin, self.terms(), at)


def _left(origin: float, terms: Sequence[tuple[float, float, float]], at: float) -> float:
    """1 - sum(weight * F(at - origin)), F a log-logistic CDF with the given median and shape."""
    elapsed = at - origin
    if elapsed <= 0:
        return 1.0
    fired = 0.0
    for weight, median, shape in terms:
        # ratio ** shape in log space: a narrow spread (a large shape) far before its median overflows a float.
        power = shape * math.log(median / elapsed)
        if power < 700:  # far before the median nothing has fired
            fired += weight / (1.0 + math.exp(power))
    return 1.0 - fired


@dataclass(frozen=True)
class Schedule:
    """The polling schedule's knobs and the key's learned timings; the decisions are methods."""

    timings: Timings
    lateness_ms: float
    rate: float
    burst: float
    min_ms: float
    idle_cap_ms: float
    tool_cap_ms: float
    settle_ms: int

    @classmethod
    def of(cls, settings: Settings, timings: Timings) -> Schedule:
        low = settings.poll_min_interval * 1000
        return cls(
            timings=timings,
            lateness_ms=settings.poll_lateness * 1000,
            rate=settings.poll_rate,
            burst=max(1.0, settings.poll_rate * settings.poll_budget_seconds),
            min_ms=low,
            idle_cap_ms=max(low, settings.poll_thinking_max_interval * 1000),
            tool_cap_ms=max(low, settings.poll_max_interval * 1000),
            settle_ms=settings.settle_ms,
        )

    # -- what a poll brought ---------------------------------------------------------------------------------

    def observed(self, pace: Pace, events: Iterable[RawEvent], *, sent_ms: int) -> Pace:
        """The pace after a poll sent at ``sent_ms`` (our clock) brought ``events`` (new ones, oldest first).

        Learns from them: tool durations and follow-up gaps, as FlowHunt stamped them (its clock's offset from ours
        does not matter for a difference of two of its stamps).
        """
        pace = replace(pace, polled_ms=sent_ms, tokens=max(self._tokens(pace, sent_ms) - 1.0, 0.0))
        for event in events:
            pace = self._fold(pace, event)
        return pace

    def _fold(self, pace: Pace, event: RawEvent) -> Pace:
        kind, at = kind_of(event), event.created_at_timestamp
        if at > _MAX_MS:
            return pace  # a stamp no clock gives (past the year 287,000): nothing to learn, and no cursor carries it
        if kind == PERSON:
            return Pace(pace.polled_ms, pace.tokens, PERSON, at)  # a new turn: nothing of the last one holds
        index = closing([name for name, _ in pace.open], tool_key(event.meta)) if kind == TOOL_END else None
        gap = None if pace.last_at_ms is None else at - pace.last_at_ms
        if gap is not None and gap >= SAME_BURST_MS and pace.last_kind is not None:
            pace = self._learn_gap(pace, gap, followed=index is None)
        if index is not None:
            pace = self._learn_tool(pace, index, event)
        elif kind == "v3_tool_call_start" and (tool_key(event.meta), at) not in pace.open:
            # (A start read again, as after a page cut short, is the same call, not a second one.)
            pace = replace(pace, open=(*pace.open, (tool_key(event.meta), at))[-MAX_OPEN:])
        if kind in ("v3_tool_call_start", TOOL_END):
            pace = replace(pace, tool=tool_key(event.meta))
        if pace.last_at_ms is not None and at < pace.last_at_ms:
            return pace  # made visible late: the newest event is still the one before
        return replace(pace, last_kind=kind, last_at_ms=at)

    def _learn_gap(self, pace: Pace, gap: int, *, followed: bool) -> Pace:
        """The newest event was followed after ``gap`` ms: by another event, or (not ``followed``) a tool's end."""
        kind = pace.last_kind or ""
        learned = self.timings.gaps
        learned.count_follow(kind, followed=followed)
        if not followed:
            return pace
        learned.learn(kind, gap / 1000)
        learned.learn(_in_context(kind, pace.tool), gap / 1000)
        return replace(pace, gaps=(*pace.gaps, (kind, gap))[-TURN_SAMPLES:])

    def _learn_tool(self, pace: Pace, index: int, end: RawEvent) -> Pace:
        """The open tool call at ``index`` ended."""
        name, started = pace.open[index]
        at = end.created_at_timestamp
        # Start to end as FlowHunt stamped them, which is what the schedule predicts; its own measure of the call
        # stands in when the start's stamp says nothing (an end stamped before its start).
        took = at - started if at >= started else milliseconds(end.meta.get("duration_ms"))
        pace = replace(pace, open=pace.open[:index] + pace.open[index + 1 :])
        if took is None or not 0 <= took <= _MAX_MS:
            return pace  # a duration_ms below zero or past any clock: neither learned nor carried in the cursor
        self.timings.tools.learn(name, took / 1000)
        return replace(pace, took=(*pace.took, (name, round(took)))[-TURN_SAMPLES:])

    # -- when to poll next -----------------------------------------------------------------------------------

    def due(self, pace: Pace, progress: TurnProgress, now_ms: int, skew_ms: int) -> int:
        """When the next poll should be sent (our clock, ms); at or before ``now_ms``: at once.

        ``skew_ms`` is how far FlowHunt's clock runs ahead of ours: an event happened at its stamp minus it.
        """
        if pace.polled_ms is None:
            return now_ms  # nothing known about this turn's pace (an old cursor, a bare timestamp): look now
        # A last poll still to come (the cursor of a replica whose clock runs ahead, ours stepped back, or a forged
        # one) is read as a poll now, else the next poll would wait for that moment.
        last = min(pace.polled_ms, now_ms)
        pace = replace(pace, polled_ms=last)
        ready = self._ready(pace)
        settle_at = settles_at(progress, self.settle_ms)
        if settle_at is not None:
            # An answer is in and no tool runs: one poll, right when the settle window closes.
            return max(settle_at + 1, ready, round(last + self.min_ms))
        cap = self.tool_cap_ms if pace.open or progress.open_tools else self.idle_cap_ms
        aim = self._aim(self.sources(pace, skew_ms), last, cap)
        return round(max(min(max(aim, last + self.min_ms), last + cap), ready))

    def sources(self, pace: Pace, skew_ms: int) -> list[Source]:
        """What can bring the next event, as the turn and the timings learned so far say."""
        gaps = self.timings.gaps
        found = [
            Source(started - skew_ms + self._aim_past(name), self._tool(pace, name)) for name, started in pace.open
        ]
        if pace.last_at_ms is not None:
            chance = gaps.follow_chance(pace.last_kind or "") if pace.open else 1.0
            found.append(Source(pace.last_at_ms - skew_ms, self._gap(pace), chance))
        elif pace.polled_ms is not None:
            # Nothing seen of the turn yet (a cursor from elsewhere): the next event, whatever it is, from now on.
            found.append(Source(pace.polled_ms, [(1.0, gaps.predict(None))]))
        return found

    def _aim_past(self, name: str) -> float:
        """How long after the end of a call of ``name`` to aim: when its end is soon followed by another event (a
        flow edit), that follow-up's usual delay, so that one poll brings both; else 0."""
        gaps = self.timings.gaps
        follows = gaps.refine(gaps.predict(TOOL_END), _in_context(TOOL_END, name))
        delay = follows.median_s * 1000
        return delay * gaps.follow_chance(TOOL_END) if delay <= FOLLOW_UP_AIM_MS else 0.0

    def _aim(self, sources: Sequence[Source], since: float, cap: float) -> float:
        """Where the expected delay of the next event, had we polled there, reaches ``lateness``; at most
        ``since + cap``. ``since`` is the last poll: nothing came before it."""
        terms = [(source.origin, source.terms()) for source in sources]
        before = [_left(origin, parts, since) for origin, parts in terms]
        delay, t = 0.0, since
        while t < since + cap:
            step = 10.0 + 0.03 * (t - since)  # finer where the decision usually falls
            left = 1.0
            for (origin, parts), at_since in zip(terms, before, strict=True):
                if at_since > 0:
                    left *= _left(origin, parts, t + step / 2) / at_since
            came = 1.0 - left  # the chance the next event came by the middle of this step
            if delay + came * step >= self.lateness_ms:
                return t + (self.lateness_ms - delay) / max(came, 1e-9)
            delay += came * step
            t += step
        return t

    def _tool(self, pace: Pace, name: str) -> Parts:
        """When an open call of tool ``name`` ends: what the name took before, and what this turn's tools took."""
        tools = self.timings.tools
        learned = tools.predict(name)
        mine = [math.log(ms / 1000) for _, ms in pace.took if ms > 0]
        if not mine:
            return [(1.0, learned)]
        weight = len(mine) / (len(mine) + TURN_TOOL_WEIGHT * (1 + tools.samples(name)))
        return [(1.0 - weight, learned), (weight, _tempo(mine))]

    def _gap(self, pace: Pace) -> Parts:
        """When the follow-up to the newest event comes: how soon one came after its kind, and in this turn."""
        gaps = self.timings.gaps
        kind = pace.last_kind or ""
        learned = gaps.refine(gaps.predict(kind), _in_context(kind, pace.tool))
        mine = [math.log(gap / 1000) for seen, gap in pace.gaps if seen == kind and gap > 0]
        if not mine:
            return [(1.0, learned)]
        weight = len(mine) / (len(mine) + TURN_GAP_WEIGHT)
        return [(1.0 - weight, learned), (weight, _tempo(mine))]

    def _tokens(self, pace: Pace, at_ms: float) -> float:
        """Polls in hand at ``at_ms``."""
        if pace.tokens is None or pace.polled_ms is None:
            return self.burst
        return min(self.burst, pace.tokens + max(at_ms - pace.polled_ms, 0.0) * self.rate / 1000)

    def _ready(self, pace: Pace) -> int:
        """The first moment the budget has a whole poll in hand."""
        if pace.tokens is None or pace.polled_ms is None or pace.tokens >= 1.0:
            return pace.polled_ms or 0
        return pace.polled_ms + math.ceil((1.0 - pace.tokens) * 1000 / self.rate)


def _in_context(kind: str, tool: str) -> str:
    """The key a follow-up gap is also learned by: its kind after which tool."""
    return f"{kind}@{tool}"[: MAX_KIND_CHARS + MAX_ID_CHARS + 1]


def _tempo(logs: Sequence[float]) -> Spread:
    """A turn's own tempo from its samples (log seconds): their mean, and their spread (TEMPO_SIGMA at first)."""
    n = len(logs)
    mean = sum(logs) / n
    scatter = sum((x - mean) ** 2 for x in logs)
    return Spread(mean, max(math.sqrt((scatter + TEMPO_SIGMA**2) / n), MIN_SIGMA))


# -- the pace in the cursor --------------------------------------------------------------------------------------

_MAX_TOKENS_X100 = 600_000  # the largest budget settings allow (FLOW_MCP_POLL_RATE 100 x 60 s), in hundredths


def pace_state(pace: Pace) -> list[Any]:
    """The pace as compact JSON for the cursor: [version, polled, tokens x 100, kind, at, open, gaps, tool, took]."""
    tokens = None if pace.tokens is None else min(round(pace.tokens * 100), _MAX_TOKENS_X100)
    return [
        _VERSION,
        pace.polled_ms,
        tokens,
        pace.last_kind,
        pace.last_at_ms,
        [[name, at] for name, at in pace.open],
        [[kind, gap] for kind, gap in pace.gaps],
        pace.tool,
        [[name, took] for name, took in pace.took],
    ]


def pace_from_state(state: Any) -> Pace:
    """A pace read back from a cursor; ValueError when it is not one this version wrote."""
    if not isinstance(state, list) or len(state) != 9 or state[0] != _VERSION:
        raise ValueError("bad pace")
    _, polled, tokens, kind, at, open_tools, gaps, tool, took = state
    if not (_optional_ms(polled) and _optional_ms(at) and (tokens is None or _int_in(tokens, 0, _MAX_TOKENS_X100))):
        raise ValueError("bad pace times")
    if kind is not None and not (isinstance(kind, str) and len(kind) <= MAX_KIND_CHARS):
        raise ValueError("bad pace kind")
    if not (isinstance(tool, str) and len(tool) <= MAX_ID_CHARS):
        raise ValueError("bad pace tool")
    return Pace(
        polled_ms=polled,
        tokens=None if tokens is None else tokens / 100,
        last_kind=kind,
        last_at_ms=at,
        open=tuple(_pairs(open_tools, MAX_OPEN, MAX_ID_CHARS, 0, _MAX_MS)),
        gaps=tuple(_pairs(gaps, TURN_SAMPLES, MAX_KIND_CHARS, 1, _MAX_MS)),  # a gap of 0 has no logarithm
        tool=tool,
        took=tuple(_pairs(took, TURN_SAMPLES, MAX_ID_CHARS, 0, _MAX_MS)),
    )


def _pairs(value: Any, most: int, chars: int, low: int, high: int) -> list[tuple[str, int]]:
    if not isinstance(value, list) or len(value) > most:
        raise ValueError("bad pace list")
    pairs = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and len(item[0]) <= chars):
            raise ValueError("bad pace entry")
        if not _int_in(item[1], low, high):
            raise ValueError("bad pace entry")
        pairs.append((item[0], item[1]))
    return pairs


def _int_in(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _optional_ms(value: Any) -> bool:
    return value is None or _int_in(value, 0, _MAX_MS)
