"""Following a turn: the polling loop and its policy, on top of the client and the pure turn logic.

A poll is idempotent, so a poll cut short by a deadline or a cancellation loses nothing: the cursor
only moves after a whole batch has been accepted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import anyio

from flow_mcp import telemetry
from flow_mcp.config import Settings
from flow_mcp.errors import RateLimitError, ResponseShapeError, ServerError, TransportError
from flow_mcp.flowhunt.client import FlowHuntClient, SessionKind
from flow_mcp.flowhunt.cursor import Cursor, Taken
from flow_mcp.flowhunt.events import summarize
from flow_mcp.flowhunt.logger import get_logger
from flow_mcp.flowhunt.turn import TurnProgress, settles_at, status_of
from flow_mcp.flowhunt.wire import RawEvent

log = get_logger()

MAX_REPLAY_POLLS = 50  # FlowHunt answers a replay in one batch; more than this means it keeps paging forever
MAX_FAILED_POLLS = 3
"""Consecutive failed polls (each already retried by the client) after which following a turn gives up."""
_PASSING_FAILURES = (TransportError, ServerError, RateLimitError, ResponseShapeError)

OnEvents = Callable[[Sequence[RawEvent], Cursor], Awaitable[None]]
Until = Literal["new_events", "turn_end"]


def now_ms() -> int:
    """Wall-clock milliseconds; the cursor carries it across calls (and processes), so not monotonic."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class PollPolicy:
    """When to poll next, from what the turn is doing.

    Events come in bursts (a tool starts, ends, the answer follows), so right after an event the next poll
    comes soon. In a quiet stretch the pause grows by ``growth`` per empty poll, up to a cap that depends on
    the turn: short while no tool call is open (the assistant is thinking and the next event is near), long
    while a tool call runs (tool calls take seconds to minutes). An answer waiting for its settle window is
    polled once, when the window closes.
    """

    min_interval: float
    thinking_max_interval: float
    tool_max_interval: float
    growth: float

    @classmethod
    def from_settings(cls, settings: Settings) -> PollPolicy:
        low = settings.poll_min_interval
        return cls(
            min_interval=low,
            thinking_max_interval=max(low, settings.poll_thinking_max_interval),
            tool_max_interval=max(low, settings.poll_max_interval),
            growth=settings.poll_growth,
        )

    def next_interval(self, current: float, got_events: bool, progress: TurnProgress) -> float:
        if got_events:
            return self.min_interval
        cap = self.tool_max_interval if progress.open_tools else self.thinking_max_interval
        return min(cap, current * self.growth)


def log_events(session_id: str, events: Sequence[RawEvent]) -> None:
    """One structured log line per received event."""
    for event in events:
        log.info(
            "flowhunt_event",
            session_id=session_id,
            event_id=event.event_id,
            action_type=event.action_type,
            event_type=event.event_type,
            credits=event.credits,
            component_name=event.component_name,
            summary=summarize(event),
        )


def absorb(
    session_id: str, cursor: Cursor, batch: Sequence[RawEvent], settle_ms: int, limit: int | None = None
) -> tuple[list[RawEvent], Cursor]:
    """Accept a batch into the cursor: the new events (logged) and the cursor with the turn's progress."""
    taken = cursor.advanced(batch, limit, now_ms(), settle_ms)
    if taken.events:
        telemetry.count(telemetry.EVENTS, len(taken.events))
    log_events(session_id, taken.events)
    log_left_out(session_id, taken)
    return taken.events, taken.cursor


def log_left_out(session_id: str, taken: Taken) -> None:
    """A warning for each thing about a batch the cursor could not take as FlowHunt sent it."""
    if taken.older:
        log.warning(
            "events_older_than_asked",
            session_id=session_id,
            count=taken.older,
            why="FlowHunt sent events stamped before the poll's from_timestamp; they were dropped",
        )
    for event in taken.ahead:
        log.warning(
            "event_stamped_ahead",
            session_id=session_id,
            event_id=event.event_id,
            created_at_timestamp=event.created_at_timestamp,
            why="stamped past now plus the allowed clock gap: delivered once, the cursor did not move to it",
        )
    if taken.ahead_dropped:
        log.warning("events_stamped_ahead_dropped", session_id=session_id, count=taken.ahead_dropped)
    if taken.skipped is not None:
        log.warning(
            "crowded_millisecond_skipped",
            session_id=session_id,
            created_at_timestamp=taken.skipped,
            why="more events in one millisecond than a cursor remembers: the cursor moved past it, and any of its "
            "events not yet delivered are lost",
        )


async def follow(
    client: FlowHuntClient,
    session_id: str,
    cursor: Cursor,
    *,
    settings: Settings | None = None,
    deadline: float = math.inf,
    until: Until = "turn_end",
    on_events: OnEvents | None = None,
    max_events: int | None = None,
    kind: SessionKind = "assistant",
) -> Cursor:
    """Poll until the turn ends (or, with ``until="new_events"``, new events arrive) or ``deadline``.

    Each event reaches ``on_events`` exactly once, in order, with the cursor after its batch; the policy adapts
    to what the turn is doing. ``cursor`` comes from ``send_message`` (or ``decode_cursor``). With
    ``until="new_events"``, an answer that is only waiting for its settle window is followed to the
    window's end, so the caller gets the answer and "completed" together. ``deadline`` is on
    ``time.monotonic()``; the first poll always completes. With ``max_events``, at most that many events
    are handed out and the cursor stops after the last of them. ``settings`` default to the client's; ``kind`` says
    whether ``session_id`` is an assistant's or a published flow's session. Returns the
    cursor after the last whole batch; its ``progress.outcome`` is how the turn ended (None: still running).
    """
    settings = settings or client.settings
    policy = PollPolicy.from_settings(settings)
    settle_ms = settings.settle_ms
    interval = policy.min_interval
    delivered = 0
    failures = 0
    # With no time at all (poll_events with wait_seconds=0) one poll still runs, within one FLOWHUNT_TIMEOUT.
    first_deadline = time.monotonic() + settings.timeout if deadline <= time.monotonic() else None
    poll_until = math.inf if first_deadline is not None else deadline
    if until == "turn_end":
        # Right after invoke FlowHunt has nothing new yet: the first poll waits one short interval.
        await anyio.sleep(min(policy.min_interval, max(deadline - time.monotonic(), 0.0)))
    while True:
        batch: list[RawEvent] | None = None
        try:
            with anyio.move_on_after(max(poll_until - time.monotonic(), 0.0)):
                batch = await client.poll(session_id, cursor.query_timestamp(), kind=kind, deadline=first_deadline)
        except _PASSING_FAILURES as error:
            # The client already retried this poll; a turn outlives a bad minute of FlowHunt's, so keep going.
            failures += 1
            if failures >= MAX_FAILED_POLLS or time.monotonic() >= deadline:
                raise
            log.warning("poll_failed", session_id=session_id, consecutive=failures, error_type=type(error).__name__)
            await anyio.sleep(min(policy.tool_max_interval, max(deadline - time.monotonic(), 0.0)))
            continue
        if batch is None:  # the deadline cut the poll short; FlowHunt state is untouched
            return cursor
        poll_until, first_deadline = deadline, None
        failures = 0
        room = None if max_events is None else max_events - delivered
        fresh, cursor = absorb(session_id, cursor, batch, settle_ms, room)
        if fresh and on_events is not None:
            await on_events(fresh, cursor)
        delivered += len(fresh)
        if room is not None and len(fresh) >= room:
            return cursor  # the caller's share is full; the rest waits for the next call
        if status_of(cursor.progress, now_ms(), settle_ms) != "running":
            return cursor
        if until == "new_events" and delivered and settles_at(cursor.progress, settle_ms) is None:
            return cursor
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return cursor
        interval = policy.next_interval(interval, bool(fresh), cursor.progress)
        settle_at = settles_at(cursor.progress, settle_ms)
        if settle_at is not None:
            # An answer is in and no tool runs: poll once, right when the settle window closes. Polls inside
            # the window would only see the rare late event a little sooner, at the cost of requests.
            interval = max((settle_at - now_ms()) / 1000, 0.0) + 0.005
        await anyio.sleep(min(interval, remaining))


async def replay(
    client: FlowHuntClient, session_id: str, *, kind: SessionKind = "assistant", deadline: float | None = None
) -> tuple[list[RawEvent], Cursor]:
    """Every event of a session so far, oldest first, each once: poll from "0" until nothing new comes."""
    cursor = Cursor(timestamp=0)
    events: list[RawEvent] = []
    for _ in range(MAX_REPLAY_POLLS):
        batch = await client.poll(session_id, cursor.query_timestamp(), kind=kind, deadline=deadline)
        fresh, cursor = cursor.accept(batch, now_ms=now_ms())
        if not fresh:
            break
        events += fresh
    return events, cursor
