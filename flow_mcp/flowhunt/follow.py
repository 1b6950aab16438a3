"""Following a turn: the polling loop, on top of the client, the pure turn logic and the schedule (``schedule.py``).

A poll is idempotent, so a poll cut short by a deadline or a cancellation loses nothing: the cursor
only moves after a whole batch has been accepted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Literal

import anyio

from flow_mcp import telemetry
from flow_mcp.config import Settings
from flow_mcp.errors import RateLimitError, ResponseShapeError, ServerError, TransportError
from flow_mcp.flowhunt.client import FlowHuntClient, SessionKind
from flow_mcp.flowhunt.cursor import Cursor, Taken, skew_shown
from flow_mcp.flowhunt.events import summarize
from flow_mcp.flowhunt.logger import get_logger
from flow_mcp.flowhunt.schedule import Schedule
from flow_mcp.flowhunt.turn import settles_at, status_of
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
    note_taken(session_id, taken)
    return taken.events, taken.cursor


def note_taken(session_id: str, taken: Taken) -> None:
    """What a batch brought, in the logs and the metrics."""
    if taken.events:
        telemetry.count(telemetry.EVENTS, len(taken.events))
    log_events(session_id, taken.events)
    log_left_out(session_id, taken)


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


def took_poll(
    schedule: Schedule,
    cursor: Cursor,
    batch: Sequence[RawEvent],
    *,
    sent_ms: int,
    now_ms: int,
    limit: int | None = None,
) -> Taken:
    """A poll sent at ``sent_ms`` answered ``batch`` at ``now_ms``: the new events, and the cursor with the turn's
    progress and the schedule's pace after them. Pure: the simulator (bench/simulate.py) runs it in virtual time."""
    clock = schedule.timings.clock
    taken = cursor.skew_at_least(clock.floor(now_ms)).advanced(
        batch, limit, now_ms, schedule.settle_ms, sent_ms=sent_ms
    )
    shown = skew_shown(taken, now_ms)
    if shown is not None:
        clock.seen(shown, now_ms)
    pace = schedule.observed(taken.cursor.pace, taken.events, sent_ms=sent_ms)
    return replace(taken, cursor=taken.cursor.with_pace(pace))


def is_done(cursor: Cursor, until: Until, delivered: int, now_ms: int, settle_ms: int) -> bool:
    """Whether following stops here: the turn ended, or (``until="new_events"``) events came and no answer is
    only waiting for its settle window."""
    if status_of(cursor.progress, cursor.quiet_until(now_ms), settle_ms) != "running":
        return True
    return until == "new_events" and delivered > 0 and settles_at(cursor.progress, settle_ms) is None


def next_poll(schedule: Schedule, cursor: Cursor, now_ms: int) -> int:
    """When the schedule wants the next poll (our clock, ms)."""
    return schedule.due(cursor.pace, cursor.progress, now_ms, cursor.clock_skew_ms)


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

    Each event reaches ``on_events`` exactly once, in order, with the cursor after its batch; when to poll is the
    schedule's (``schedule.py``), which goes on where the cursor's pace left it: a cursor from ``send_message`` or
    an earlier call has its first poll when the schedule wants it, any other at once. With
    ``until="new_events"``, an answer that is only waiting for its settle window is followed to the
    window's end, so the caller gets the answer and "completed" together. ``deadline`` is on
    ``time.monotonic()``; one poll always runs and completes (with no time at all, at once). With
    ``max_events``, at most that many events are handed out and the cursor stops after the last of them.
    ``settings`` default to the client's; ``kind`` says whether ``session_id`` is an assistant's or a published
    flow's session. Returns the cursor after the last whole batch; its ``progress.outcome`` is how the turn ended
    (None: still running).
    """
    settings = settings or client.settings
    schedule = Schedule.of(settings, client.timings)
    settle_ms = settings.settle_ms
    delivered = 0
    failures = 0
    if deadline > time.monotonic():
        # The first poll comes when the schedule wants it, and at the latest when the time is up.
        await anyio.sleep(min(_until(next_poll(schedule, cursor, now_ms())), max(deadline - time.monotonic(), 0.0)))
    # One poll always runs, the time up or not (poll_events with wait_seconds=0), within one FLOWHUNT_TIMEOUT.
    first_deadline = time.monotonic() + settings.timeout if deadline <= time.monotonic() else None
    poll_until = math.inf if first_deadline is not None else deadline
    while True:
        batch: list[RawEvent] | None = None
        sent = now_ms()
        try:
            with anyio.move_on_after(max(poll_until - time.monotonic(), 0.0)):
                batch = await client.poll(
                    session_id, cursor.query_timestamp(), kind=kind, deadline=first_deadline, seen=cursor.delivered
                )
        except _PASSING_FAILURES as error:
            # The client already retried this poll; a turn outlives a bad minute of FlowHunt's, so keep going.
            failures += 1
            if failures >= MAX_FAILED_POLLS or time.monotonic() >= deadline:
                raise
            log.warning("poll_failed", session_id=session_id, consecutive=failures, error_type=type(error).__name__)
            await anyio.sleep(min(schedule.idle_cap_ms / 1000, max(deadline - time.monotonic(), 0.0)))
            continue
        if batch is None:  # the deadline cut the poll short; FlowHunt state is untouched
            return cursor
        poll_until, first_deadline = deadline, None
        failures = 0
        room = None if max_events is None else max_events - delivered
        taken = took_poll(schedule, cursor, batch, sent_ms=sent, now_ms=now_ms(), limit=room)
        fresh, cursor = taken.events, taken.cursor
        note_taken(session_id, taken)
        if fresh and on_events is not None:
            await on_events(fresh, cursor)
        delivered += len(fresh)
        if room is not None and len(fresh) >= room:
            return cursor  # the caller's share is full; the rest waits for the next call
        if is_done(cursor, until, delivered, now_ms(), settle_ms):
            return cursor
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return cursor
        await anyio.sleep(min(_until(next_poll(schedule, cursor, now_ms())), remaining))


def _until(at_ms: int) -> float:
    """Seconds from now to ``at_ms`` on our clock (0 when it has passed)."""
    return max(at_ms - now_ms(), 0) / 1000


async def replay(
    client: FlowHuntClient, session_id: str, *, kind: SessionKind = "assistant", deadline: float | None = None
) -> tuple[list[RawEvent], Cursor]:
    """Every event of a session so far, oldest first, each once: poll from "0" until nothing new comes."""
    cursor = Cursor(timestamp=0)
    events: list[RawEvent] = []
    for _ in range(MAX_REPLAY_POLLS):
        batch = await client.poll(
            session_id, cursor.query_timestamp(), kind=kind, deadline=deadline, seen=cursor.delivered
        )
        fresh, cursor = cursor.accept(batch, now_ms=now_ms())
        if not fresh:
            break
        events += fresh
    return events, cursor
