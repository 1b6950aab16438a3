"""The exactly-once cursor: where a reader stands in a session's events, and its opaque string form. Pure, no I/O.

Why the cursor looks the way it does: FlowHunt does not say whether ``from_timestamp`` is inclusive or
exclusive, events inside one response may be out of time order, several events can share one millisecond, and
nothing promises that an event becomes visible before a later-stamped one does. So the cursor remembers the
greatest timestamp delivered (``timestamp``) and, for a short look-back window before it (``LOOKBACK_MS``), the
ids of every event delivered there. The next poll asks from one millisecond before the window, so that under
either reading every event of the window or later comes back; those already delivered are dropped by id, and an
event made visible late, behind newer ones, is still delivered. Only events older than the window are taken to
have been delivered before.

Ids at ``timestamp`` are kept as they are while they are few; the rest ride in the string form as short digests
(6 bytes of SHA-256), so that even a crowded millisecond fits. Two bounds keep the cursor small, and neither
ever makes it hand the same event out again:

- At most ``MAX_REMEMBERED_IDS`` ids are remembered. Past it the window shrinks, whole milliseconds at a time;
  if one millisecond alone holds more, the cursor moves past that millisecond and its events not yet delivered
  are lost (the caller logs it). Losing a few events of such a flood beats looping: a cursor that forgot ids it
  still polls would hand the same events out on every call, forever, and the turn would never get on.
- A timestamp later than now plus ``MAX_CLOCK_AHEAD_MS`` (on FlowHunt's clock, as measured when the message was
  sent) never moves the cursor: a clock gone wrong (a year-2100 stamp) would otherwise make every real event
  after it look old. Such an event is delivered once and its id remembered (at most ``MAX_AHEAD_IDS`` of them).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import struct
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from flow_mcp.errors import InvalidArgumentError
from flow_mcp.flowhunt.schedule import MAX_OPEN, Pace, pace_from_state, pace_state
from flow_mcp.flowhunt.turn import (
    MAX_ID_CHARS,
    TurnProgress,
    WaitingFor,
    advance,
    causal_order,
    latch_completed,
)
from flow_mcp.flowhunt.wire import RawEvent

LOOKBACK_MS = 2_000
"""How far before the newest delivered event each poll looks again, for events FlowHunt made visible late."""
MAX_CLOCK_AHEAD_MS = 600_000
"""How far past now (on FlowHunt's clock) a timestamp may be and still move the cursor."""
MAX_REMEMBERED_IDS = 1_000
"""Ids of delivered events the cursor remembers in its look-back window, a crowded millisecond included."""
MAX_AHEAD_IDS = 50
"""Ids of delivered events stamped past the ceiling that the cursor remembers; more such events are dropped."""

_CURSOR_PREFIX = "c1."
# What encode() can produce at most, with room to spare: every text and name at its cap in characters JSON
# escapes to twelve (outside the BMP), the window full of digests, come to about 150,000 characters.
_MAX_CURSOR_CHARS = 262_144
_PLAIN_IDS = 16  # up to this many ids at the cursor's timestamp are written as they are, the rest as digests
_DIGEST_BYTES = 6  # a false match needs 2**48 / MAX_REMEMBERED_IDS tries: never in practice
_OFFSET = struct.Struct(">H")  # a window id's millisecond, counted back from the cursor's timestamp
_MAX_OFFSET = 0xFFFF  # the deepest look-back a cursor string can carry; LOOKBACK_MS is far below
_STAMP = struct.Struct(">Q")  # an ahead id's own timestamp
_MAX_SKEW_SLACK_MS = 600_000  # an invoke's round trip: FLOWHUNT_TIMEOUT is at most 600 s
_MAX_CARRIED_TEXT = 500  # error and prompt texts ride in the cursor so a later poll can still report them
_RAW_TIMESTAMP = re.compile(r"[0-9]{1,20}")  # ASCII digits only, used with fullmatch
_DIGEST_KEY = re.compile(r"#[0-9a-f]{12,64}")  # used with fullmatch; older cursors carried 40 hex digits

Remembered = frozenset[tuple[int, str]]
"""(timestamp, digest key) of delivered events."""


@dataclass(frozen=True)
class Cursor:
    """Where a reader stands in a session's event stream, and what the turn so far looked like."""

    timestamp: int
    seen_at_timestamp: frozenset[str] = frozenset()
    progress: TurnProgress = field(default_factory=TurnProgress)
    clock_skew_ms: int = 0
    """How far FlowHunt's clock runs ahead of ours (0: unknown), at least: an event is read as having happened
    at its stamp minus this, so never earlier than it did. Measured when the message was sent (FlowHunt's stamp
    of it against when its answer came back), and raised as polls show events sooner than that allows."""
    clock_skew_slack_ms: int = 0
    """How much higher the clock skew may still be: the round trip of the message's invoke, less what polls
    showed since. It bounds what any stamp can do to the skew."""
    lookback_ms: int = 0
    """How far before ``timestamp`` the next poll looks again (0 until something was delivered)."""
    seen_before: Remembered = frozenset()
    """Events delivered inside the look-back window, before ``timestamp``."""
    seen_ahead: Remembered = frozenset()
    """Events delivered with a timestamp past the ceiling, which did not move the cursor."""
    pace: Pace = field(default_factory=Pace)
    """Where the polling schedule stands in this turn (``schedule.py``)."""

    def query_timestamp(self) -> str:
        """The ``from_timestamp`` to poll with: one millisecond before the window, right under both readings."""
        return str(max(self.timestamp - self.lookback_ms - 1, 0))

    def accept(
        self, batch: Iterable[RawEvent], limit: int | None = None, now_ms: int | None = None
    ) -> tuple[list[RawEvent], Cursor]:
        """take() without the notes: the new events, oldest first, and the advanced cursor."""
        taken = self.take(batch, limit, now_ms)
        return taken.events, taken.cursor

    def take(self, batch: Iterable[RawEvent], limit: int | None = None, now_ms: int | None = None) -> Taken:
        """Keep the events of a poll batch not delivered before, oldest first, and the advanced cursor.

        With ``limit``, only the oldest ``limit`` new events are taken, and the cursor stops right after them:
        the rest come with the next poll, so a huge batch is handed out in parts and nothing is skipped.
        ``now_ms`` (our clock) sets the ceiling past which a timestamp does not move the cursor; None: no ceiling.
        """
        floor = self.timestamp - self.lookback_ms
        # A clock running behind ours only lowers its timestamps: the ceiling never drops below our own now.
        ceiling = None if now_ms is None else now_ms + max(self.clock_skew_ms, 0) + MAX_CLOCK_AHEAD_MS
        fresh: dict[str, RawEvent] = {}
        older = 0
        for event in batch:
            if event.created_at_timestamp < floor:
                if event.created_at_timestamp < floor - 1:  # the poll asked from floor - 1: this was not asked for
                    older += 1
                continue
            if event.event_id not in fresh and not self._delivered(event.event_id, event.created_at_timestamp):
                fresh[event.event_id] = event
        ordered = sorted(fresh.values(), key=causal_order)
        timely = [event for event in ordered if ceiling is None or event.created_at_timestamp <= ceiling]
        beyond = ordered[len(timely) :]  # the latest timestamps sort last
        room = max(MAX_AHEAD_IDS - len(self.seen_ahead), 0)
        taken = (timely + beyond[:room])[:limit]
        dropped = max(len(beyond) - room, 0)
        if not taken:
            return Taken([], self, older=older, ahead_dropped=dropped)
        ahead = tuple(taken[len(timely) :])
        cursor, skipped = self._after(taken[: len(timely)], ahead)
        return Taken(taken, cursor, older=older, ahead=ahead, ahead_dropped=dropped, skipped=skipped)

    def delivered(self, event_id: str, timestamp: int) -> bool:
        """True for an event this cursor delivered already: ``take`` would drop it, so a poll may drop it unread.

        False for an event older than the look-back window, which ``take`` counts before it drops it.
        """
        return timestamp >= self.timestamp - self.lookback_ms and self._delivered(event_id, timestamp)

    def _delivered(self, event_id: str, timestamp: int) -> bool:
        at_cursor = timestamp == self.timestamp and bool(self.seen_at_timestamp)
        known = self._known_digests
        if not known and not at_cursor:
            return False
        digest = _digest(event_id)
        if digest in known:
            return True
        # Ids at the timestamp are kept as they are, or as digests once a cursor string carried many of them.
        return at_cursor and (_id_key(event_id) in self.seen_at_timestamp or digest in self.seen_at_timestamp)

    @cached_property
    def _known_digests(self) -> frozenset[str]:
        """Digests of the events delivered before ``timestamp`` or past the ceiling; worked out once per cursor."""
        return frozenset(digest for _, digest in self.seen_before | self.seen_ahead)

    def _after(self, timely: list[RawEvent], ahead: tuple[RawEvent, ...]) -> tuple[Cursor, int | None]:
        """The cursor once ``timely`` and ``ahead`` are delivered; and the millisecond skipped, if one was."""
        newest = max([self.timestamp, *(event.created_at_timestamp for event in timely)])
        at_newest = {_id_key(event.event_id) for event in timely if event.created_at_timestamp == newest}
        before = set(self.seen_before)
        before |= {(e.created_at_timestamp, _digest(e.event_id)) for e in timely if e.created_at_timestamp < newest}
        if newest == self.timestamp:
            at_newest |= self.seen_at_timestamp
        else:
            before |= {(self.timestamp, _as_digest(key)) for key in self.seen_at_timestamp}
        floor = max(self.timestamp - self.lookback_ms, newest - LOOKBACK_MS)
        ahead_ids = self.seen_ahead | {(e.created_at_timestamp, _digest(e.event_id)) for e in ahead}
        if len(at_newest) > MAX_REMEMBERED_IDS:
            # Too crowded to remember: move past the millisecond rather than hand its events out again.
            moved = replace(
                self,
                timestamp=newest + 1,
                seen_at_timestamp=frozenset(),
                lookback_ms=0,
                seen_before=frozenset(),
                seen_ahead=frozenset(entry for entry in ahead_ids if entry[0] > newest),
            )
            return moved, newest
        floor = _floor_within(before, floor, MAX_REMEMBERED_IDS - len(at_newest))
        cursor = replace(
            self,
            timestamp=newest,
            seen_at_timestamp=frozenset(at_newest),
            lookback_ms=newest - floor,
            seen_before=frozenset(entry for entry in before if entry[0] >= floor),
            seen_ahead=frozenset(entry for entry in ahead_ids if entry[0] >= floor),
        )
        return cursor, None

    def advanced(
        self, batch: Iterable[RawEvent], limit: int | None, now_ms: int, settle_ms: int, *, sent_ms: int | None = None
    ) -> Taken:
        """take(), with the turn's progress carried forward; ``sent_ms``: when the poll that brought ``batch`` was
        sent (the batch proves FlowHunt quiet only until then), if not ``now_ms``."""
        taken = self.take(batch, limit, now_ms)
        cursor = taken.cursor.skew_at_least(skew_shown(taken, now_ms))
        # Events older than what was delivered already were made visible late: they cannot open a new turn.
        progress = advance(self.progress, taken.events, now_ms, cursor.clock_skew_ms, delivered_until=self.timestamp)
        quiet_until = now_ms if sent_ms is None else min(sent_ms, now_ms)
        progress = latch_completed(progress, quiet_until, settle_ms)
        if progress is cursor.progress and cursor is taken.cursor:
            return taken  # a poll that brought nothing new and changed nothing: the same cursor
        return replace(taken, cursor=cursor.with_progress(progress))

    def quiet_until(self, now_ms: int) -> int:
        """The latest moment FlowHunt is known to have had nothing more for the turn: when the last poll was sent.

        A poll's answer shows FlowHunt as it was somewhere between the poll's sending and its receipt (a slow body
        comes in long after it was served), so a settle window is only over once a poll sent after it answered.
        """
        polled = self.pace.polled_ms
        return now_ms if polled is None else min(polled, now_ms)

    def skew_at_least(self, bound: int | None) -> Cursor:
        """The clock skew raised to ``bound``, a lower bound of it (``skew_shown``), by at most the slack left.

        The slack is what the invoke's round trip left unknown: no stamp, however wrong, moves the skew past it.
        """
        if bound is None or not self.clock_skew_slack_ms:
            return self
        rise = min(bound - self.clock_skew_ms, self.clock_skew_slack_ms)
        if rise <= 0:
            return self
        return replace(
            self, clock_skew_ms=self.clock_skew_ms + rise, clock_skew_slack_ms=self.clock_skew_slack_ms - rise
        )

    def with_progress(self, progress: TurnProgress) -> Cursor:
        return replace(self, progress=progress)

    def with_pace(self, pace: Pace) -> Cursor:
        return replace(self, pace=pace)

    def encode(self) -> str:
        """The opaque string handed to tool callers."""
        return self._encoded

    @cached_property
    def _encoded(self) -> str:
        # A cursor is frozen, and the same one is encoded for an error hint and again for the result: once is enough.
        progress = self.progress
        state: dict[str, Any] = {"t": self.timestamp}
        at = sorted(self.seen_at_timestamp)
        if at and len(at) <= _PLAIN_IDS:
            state["i"] = at
        window = sorted((self.timestamp - stamp, digest) for stamp, digest in self.seen_before)
        if len(at) > _PLAIN_IDS:
            window += [(0, _as_digest(key)) for key in at]
        if window:
            state["d"] = _pack(_OFFSET, window)
        if self.lookback_ms:
            state["b"] = self.lookback_ms
        if self.seen_ahead:
            state["f"] = _pack(_STAMP, sorted(self.seen_ahead))
        if progress.answered:
            state["a"] = 1
        if progress.open_tools:
            state["o"] = list(progress.open_tools[:MAX_OPEN])
        if progress.outcome:
            state["s"] = progress.outcome
        if progress.last_event_ms is not None:
            state["l"] = progress.last_event_ms
        if self.clock_skew_ms:
            state["k"] = self.clock_skew_ms
        if self.clock_skew_slack_ms:
            state["ks"] = self.clock_skew_slack_ms
        if self.pace != Pace():
            state["z"] = pace_state(self.pace)
        if progress.error:
            state["e"] = progress.error[:_MAX_CARRIED_TEXT]
        if progress.waiting_for:
            state["w"] = {k: v[:_MAX_CARRIED_TEXT] for k, v in progress.waiting_for.model_dump().items() if v}
        raw = json.dumps(state, separators=(",", ":"), ensure_ascii=True).encode()
        return _CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass(frozen=True)
class Taken:
    """What a poll batch brought: the new events, the cursor after them, and what was left out and why."""

    events: list[RawEvent]
    cursor: Cursor
    older: int = 0
    """Events stamped before what the poll asked for (dropped): FlowHunt's timestamps may not be milliseconds."""
    ahead: tuple[RawEvent, ...] = ()
    """Delivered events stamped past the ceiling: they did not move the cursor."""
    ahead_dropped: int = 0
    """Events stamped past the ceiling with no room left to remember them: dropped."""
    skipped: int | None = None
    """A millisecond too crowded to remember: the cursor moved past it, its events not yet delivered are lost."""


def skew_shown(taken: Taken, now_ms: int) -> int | None:
    """What a poll's answer proves of FlowHunt's clock skew: at least its newest event's stamp less ``now_ms``.

    FlowHunt stamped that event no later than it answered, and its answer came in by ``now_ms`` (our clock). An
    event seen soon after it was stamped narrows the skew down to how soon. None: nothing to tell by.
    """
    ahead = {event.event_id for event in taken.ahead}
    timely = [event.created_at_timestamp for event in taken.events if event.event_id not in ahead]
    return max(timely) - now_ms if timely else None


CURSOR_HELP = "Pass the cursor exactly as returned by invoke, poll_events or ask, or a FlowHunt timestamp (digits)."


def _digest(event_id: str) -> str:
    # Not cached: a digest takes about 0.5 µs, a poll some 2 ms, and a cache of the ids a busy process sees would
    # hold megabytes.
    return "#" + hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()[: 2 * _DIGEST_BYTES]


def _id_key(event_id: str) -> str:
    """How an event id at the cursor's timestamp is remembered: as is, or as a digest when it is long."""
    if len(event_id) <= MAX_ID_CHARS and not event_id.startswith("#"):
        return event_id
    return _digest(event_id)


def _stored_key(key: str) -> str:
    """An id key read from a cursor string, in today's form."""
    if _DIGEST_KEY.fullmatch(key):
        return key[: 1 + 2 * _DIGEST_BYTES]  # an older version wrote longer digests: their first bytes are the same
    return _id_key(key)  # an id kept as it was: "#..." ones went in as they are then


def _as_digest(key: str) -> str:
    return key if key.startswith("#") else _digest(key)


def _floor_within(remembered: set[tuple[int, str]], floor: int, room: int) -> int:
    """The lowest floor, at ``floor`` or later, above which the remembered ids fit ``room``.

    The window shrinks by whole milliseconds: ids of a millisecond kept in part would let the rest come again.
    """
    counts = Counter(stamp for stamp, _ in remembered if stamp >= floor)
    total = sum(counts.values())
    for stamp in sorted(counts):
        if total <= room:
            break
        total -= counts[stamp]
        floor = stamp + 1
    return floor


def _pack(prefix: struct.Struct, entries: Iterable[tuple[int, str]]) -> str:
    data = b"".join(prefix.pack(number) + bytes.fromhex(digest[1:]) for number, digest in entries)
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unpack(prefix: struct.Struct, text: Any) -> list[tuple[int, str]]:
    if not isinstance(text, str):
        raise ValueError("bad remembered ids")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    size = prefix.size + _DIGEST_BYTES
    if len(data) % size:
        raise ValueError("bad remembered ids")
    return [
        (prefix.unpack_from(data, at)[0], "#" + data[at + prefix.size : at + size].hex())
        for at in range(0, len(data), size)
    ]


def decode_cursor(text: str) -> Cursor:
    """Parse a cursor string: ours (``c1.``) or a raw FlowHunt timestamp of digits."""
    text = text.strip()
    if _RAW_TIMESTAMP.fullmatch(text):
        return Cursor(timestamp=int(text))
    if not text.startswith(_CURSOR_PREFIX) or len(text) > _MAX_CURSOR_CHARS:
        raise InvalidArgumentError(f"Malformed cursor. {CURSOR_HELP}")
    try:
        body = text[len(_CURSOR_PREFIX) :]
        state = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return _cursor_from_state(state)
    except (ValueError, TypeError, KeyError, binascii.Error, RecursionError) as exc:
        raise InvalidArgumentError(f"Malformed cursor. {CURSOR_HELP}") from exc


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _cursor_from_state(state: Any) -> Cursor:
    if not isinstance(state, dict):
        raise ValueError("cursor state is not an object")
    timestamp = state["t"]
    ids = state.get("i", [])
    open_tools = state.get("o", [])
    outcome = state.get("s")
    last = state.get("l")
    lookback = state.get("b", 0)
    if not _is_int(timestamp) or timestamp < 0:
        raise ValueError("bad timestamp")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError("bad ids")
    if not _is_int(lookback) or not 0 <= lookback <= min(timestamp, _MAX_OFFSET):
        raise ValueError("bad look-back")
    if not isinstance(open_tools, list) or not all(isinstance(t, str) for t in open_tools):
        raise ValueError("bad open tools")
    if outcome not in (None, "completed", "failed", "waiting_for_input", "session_closed"):
        raise ValueError("bad outcome")
    if last is not None and not _is_int(last):
        raise ValueError("bad last event time")
    skew, slack = state.get("k", 0), state.get("ks", 0)
    if not _is_int(skew) or not _is_int(slack) or not 0 <= slack <= _MAX_SKEW_SLACK_MS:
        raise ValueError("bad clock skew")
    pace = pace_from_state(state["z"]) if "z" in state else Pace()
    error = state.get("e")
    waiting = state.get("w")
    if error is not None and not isinstance(error, str):
        raise ValueError("bad error text")
    if waiting is not None and not (isinstance(waiting, dict) and all(isinstance(v, str) for v in waiting.values())):
        raise ValueError("bad waiting_for")
    at = {_stored_key(i) for i in ids}
    before: set[tuple[int, str]] = set()
    for offset, digest in _unpack(_OFFSET, state.get("d", "")):
        if offset > lookback:
            raise ValueError("remembered id outside the window")
        if offset:
            before.add((timestamp - offset, digest))
        else:
            at.add(digest)
    progress = TurnProgress(
        answered=bool(state.get("a")),
        open_tools=tuple(open_tools),
        outcome=outcome,
        error=error,
        waiting_for=WaitingFor.model_validate(waiting) if waiting else None,
        last_event_ms=last,
    )
    return Cursor(
        timestamp=timestamp,
        seen_at_timestamp=frozenset(at),
        progress=progress,
        clock_skew_ms=skew,
        clock_skew_slack_ms=slack,
        pace=pace,
        lookback_ms=lookback,
        seen_before=frozenset(before),
        seen_ahead=frozenset(_unpack(_STAMP, state.get("f", ""))),
    )
