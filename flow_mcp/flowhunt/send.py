"""Sending a message exactly once: invoke, and when the outcome is unknown, look for the message in the session.

``invoke`` is never retried once FlowHunt may have taken the message in (a 500, a dropped connection, a
timeout, a garbled 2xx): that could post it twice. Instead the session is replayed and searched for the
message. Found: the turn is followed from there as if invoke had answered. Not found after FlowHunt answered
(a 500, a garbled 2xx): the caller is told it can safely send again. Not found after a timeout or a dropped
connection proves nothing (FlowHunt may still process the request), so the caller is told to check first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio

from flow_mcp.errors import FlowHuntError, NotDeliveredError, TransportError, may_have_arrived, sentences
from flow_mcp.flowhunt.client import FlowHuntClient, SessionKind, parse_events
from flow_mcp.flowhunt.cursor import MAX_CLOCK_AHEAD_MS, Cursor
from flow_mcp.flowhunt.events import is_person_message, text_of
from flow_mcp.flowhunt.follow import absorb, now_ms, replay
from flow_mcp.flowhunt.logger import get_logger
from flow_mcp.flowhunt.schedule import Pace
from flow_mcp.flowhunt.wire import RawEvent

log = get_logger()

# FlowHunt may record a message a moment after a failed answer; look a few times before giving up.
_LOOK_AGAIN_AFTER = (0.0, 0.5, 1.5)
# For an older session, only a message stamped at most this long before our send counts as ours.
_CLOCK_SKEW_MS = 60_000


@dataclass(frozen=True)
class Sent:
    """A message FlowHunt took in, and where to follow its turn from."""

    message_id: str
    created_at: str
    cursor: Cursor
    events: list[RawEvent]
    recovered: bool = False


async def send_message(
    client: FlowHuntClient,
    session_id: str,
    message: str,
    ai_model: str | None = None,
    *,
    settle_ms: int | None = None,
    new_session: bool = False,
    deadline: float | None = None,
    kind: SessionKind = "assistant",
) -> Sent:
    """Invoke once; if FlowHunt's answer leaves it unclear whether the message arrived, find out.

    ``new_session``: the session is fresh, so any copy of the message found in it is this one. The returned
    ``Sent.cursor`` is where ``follow`` picks the turn up. ``deadline`` (``time.monotonic()``) bounds the send
    and the search: with no time left to look, the error says the message may have arrived. ``kind="flow"``: a
    published flow's session.
    """
    settle_ms = client.settings.settle_ms if settle_ms is None else settle_ms
    started = now_ms()
    try:
        invocation = await client.invoke(session_id, message, ai_model, kind=kind, deadline=deadline)
    except FlowHuntError as error:
        if not may_have_arrived(error):
            raise
        not_before = 0 if new_session else started - _CLOCK_SKEW_MS
        found = await _find_message(client, session_id, message, not_before, deadline, kind)
        if found is None and (isinstance(error, TransportError) or _past(deadline)):
            # A timed-out or dropped request may still be processed later, and a search cut short proves
            # nothing either: the caller is told to look before sending again.
            raise
        if found is None:
            raise NotDeliveredError(
                sentences(str(error), "The message does not appear in the session, so sending it again is safe.")
            ) from error
        log.warning("invoke_recovered", session_id=session_id, error_type=type(error).__name__)
        cursor = Cursor(timestamp=found.created_at_timestamp)  # the turn is followed from its own message on
        message_id = text_of(found.meta, "message_id") or found.event_id
        return Sent(message_id, str(found.created_at_timestamp), cursor, [], recovered=True)
    cached = parse_events(invocation.cached_events, session_id=session_id)
    cursor = _start(session_id, int(invocation.created_at), started, new_session)
    events, cursor = absorb(session_id, cursor, cached, settle_ms)
    return Sent(invocation.message_id, invocation.created_at, cursor, events)


def _start(session_id: str, sent_at: int, started: int, new_session: bool) -> Cursor:
    """Where to follow a turn from: the message's own timestamp, unless FlowHunt's clock says the impossible."""
    now = now_ms()
    cursor = start_cursor(sent_at, started, now)
    if cursor is not None:
        return cursor
    # Following from a time that far ahead would take every real event of the turn for an old one. A new session
    # holds nothing before this message worth hiding; in an older one, the turn began when we sent it.
    log.warning("invoke_created_at_ahead", session_id=session_id, created_at=sent_at, now_ms=now)
    return Cursor(timestamp=0 if new_session else started)


def start_cursor(sent_at: int, started: int, now: int) -> Cursor | None:
    """The cursor of a turn whose message FlowHunt stamped ``sent_at``, sent at ``started`` and answered at ``now``
    (our clock); None when the stamp is too far ahead of our clock to follow from."""
    if sent_at > now + MAX_CLOCK_AHEAD_MS:
        return None
    # FlowHunt stamped the message between our sending it and its answer coming back: its clock's offset from ours
    # is at least sent_at - now and at most that plus the round trip, so that event timestamps can be read on our
    # clock, never earlier than they happened. Polls narrow it down (Cursor.advanced).
    return Cursor(
        timestamp=sent_at,
        clock_skew_ms=sent_at - now,
        clock_skew_slack_ms=max(now - started, 0),
        pace=Pace.after_message(sent_at, started),
    )


async def _find_message(
    client: FlowHuntClient, session_id: str, message: str, not_before_ms: int, deadline: float | None, kind: SessionKind
) -> RawEvent | None:
    for delay in _LOOK_AGAIN_AFTER:
        if _past(deadline, delay):
            return None
        await anyio.sleep(delay)
        try:
            events, _ = await replay(client, session_id, kind=kind, deadline=deadline)
        except FlowHuntError:
            continue
        mine = [
            event
            for event in events
            if is_person_message(event)
            and event.meta.get("message") == message
            and event.created_at_timestamp >= not_before_ms
        ]
        if mine:
            return max(mine, key=lambda event: event.created_at_timestamp)
    return None


def _past(deadline: float | None, after: float = 0.0) -> bool:
    """Whether ``deadline`` will have passed ``after`` seconds from now."""
    return deadline is not None and time.monotonic() + after >= deadline
