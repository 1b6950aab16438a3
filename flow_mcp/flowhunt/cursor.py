"""The exactly-once cursor: where a reader stands in a session's events, and its opaque string form. Pure, no I/O.

Why the cursor looks the way it does: FlowHunt does not say whether ``from_timestamp`` is
inclusive or exclusive, events inside one response may be out of time order, and several events
can share one millisecond. So the cursor remembers the greatest timestamp delivered (``timestamp``)
and the ids already delivered at exactly that millisecond; the next poll asks from one millisecond
earlier, so that under either reading every event at ``timestamp`` or later comes back, and those
already delivered are dropped by id. Events older than ``timestamp`` were all delivered before
(FlowHunt makes events visible in time order), so they are dropped too: nothing is lost, nothing
is delivered twice.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from flow_mcp.errors import InvalidArgumentError
from flow_mcp.flowhunt.turn import MAX_ID_CHARS, WAITING_ACTIONS, TurnProgress, WaitingFor, advance, latch_completed
from flow_mcp.flowhunt.wire import RawEvent

_CURSOR_PREFIX = "c1."
_MAX_CURSOR_CHARS = 32_768  # what encode() can produce at most, with room to spare
_MAX_IDS_AT_TIMESTAMP = 128
_MAX_CARRIED_TEXT = 500  # error and prompt texts ride in the cursor so a later poll can still report them
_RAW_TIMESTAMP = re.compile(r"[0-9]{1,20}")  # ASCII digits only, used with fullmatch


@dataclass(frozen=True)
class Cursor:
    """Where a reader stands in a session's event stream, and what the turn so far looked like."""

    timestamp: int
    seen_at_timestamp: frozenset[str] = frozenset()
    progress: TurnProgress = field(default_factory=TurnProgress)
    clock_skew_ms: int = 0
    """How far FlowHunt's clock runs ahead of ours, as measured when the message was sent (0: unknown)."""

    def query_timestamp(self) -> str:
        """The ``from_timestamp`` to poll with: one millisecond early, right under both readings."""
        return str(max(self.timestamp - 1, 0))

    def accept(self, batch: Iterable[RawEvent], limit: int | None = None) -> tuple[list[RawEvent], Cursor]:
        """Keep the events of a poll batch not delivered before, oldest first, and the advanced cursor.

        With ``limit``, only the oldest ``limit`` new events are taken, and the cursor stops right after them:
        the rest come with the next poll, so a huge batch is handed out in parts and nothing is skipped.
        """
        fresh: dict[str, RawEvent] = {}
        for event in batch:
            if event.created_at_timestamp < self.timestamp:
                continue
            if event.created_at_timestamp == self.timestamp and _id_key(event.event_id) in self.seen_at_timestamp:
                continue
            fresh.setdefault(event.event_id, event)
        ordered = sorted(fresh.values(), key=_causal_order)[:limit]
        if not ordered:
            return [], self
        newest = ordered[-1].created_at_timestamp
        seen = self.seen_at_timestamp if newest == self.timestamp else frozenset()
        seen = seen | {_id_key(event.event_id) for event in ordered if event.created_at_timestamp == newest}
        return ordered, replace(self, timestamp=newest, seen_at_timestamp=seen)

    def advanced(
        self, batch: Iterable[RawEvent], limit: int | None, now_ms: int, settle_ms: int
    ) -> tuple[list[RawEvent], Cursor]:
        """accept(), with the turn's progress carried forward: the new events and the cursor after them."""
        fresh, cursor = self.accept(batch, limit)
        progress = advance(self.progress, fresh, now_ms, self.clock_skew_ms)
        return fresh, cursor.with_progress(latch_completed(progress, now_ms, settle_ms))

    def with_progress(self, progress: TurnProgress) -> Cursor:
        return replace(self, progress=progress)

    def encode(self) -> str:
        """The opaque string handed to tool callers."""
        progress = self.progress
        state: dict[str, Any] = {"t": self.timestamp}
        # Ids are capped: past the cap the oldest are dropped, which at worst re-delivers an event.
        ids = sorted(self.seen_at_timestamp)[:_MAX_IDS_AT_TIMESTAMP]
        if ids:
            state["i"] = ids
        if progress.answered:
            state["a"] = 1
        if progress.open_tools:
            state["o"] = list(progress.open_tools[:32])
        if progress.outcome:
            state["s"] = progress.outcome
        if progress.last_event_ms is not None:
            state["l"] = progress.last_event_ms
        if self.clock_skew_ms:
            state["k"] = self.clock_skew_ms
        if progress.error:
            state["e"] = progress.error[:_MAX_CARRIED_TEXT]
        if progress.waiting_for:
            state["w"] = {k: v[:_MAX_CARRIED_TEXT] for k, v in progress.waiting_for.model_dump().items() if v}
        raw = json.dumps(state, separators=(",", ":"), ensure_ascii=True).encode()
        return _CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


CURSOR_HELP = "Pass the cursor exactly as returned by invoke, poll_events or ask, or a FlowHunt timestamp (digits)."


def _id_key(event_id: str) -> str:
    """How an event id is remembered in a cursor: as is, or as a digest when it is very long."""
    if len(event_id) <= MAX_ID_CHARS:
        return event_id
    return "#" + hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _causal_order(event: RawEvent) -> tuple[int, int]:
    """Sort key: time, then, within one millisecond, the order a turn's events can happen in.

    Events of one millisecond arrive in any order (FlowHunt does not promise one); a tool call's end read
    before its start would leave the call open forever. The sort is stable, so events of equal rank keep
    FlowHunt's order.
    """
    if event.action_type == "message":
        rank = 5 if event.event_type == "ai" else 0  # a person's message opens a turn, an answer closes it
    else:
        rank = _RANK_IN_MILLISECOND.get(event.action_type, 3)
    return event.created_at_timestamp, rank


_RANK_IN_MILLISECOND = {
    "v3_flow_assistant_init": 1,
    "agent_initialized": 1,
    "v3_tool_call_start": 2,
    "v3_tool_call_end": 4,
    "tool_call": 4,
    **dict.fromkeys(WAITING_ACTIONS, 6),
    "failed": 6,
    "session_closed": 7,
}


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


def _cursor_from_state(state: Any) -> Cursor:
    if not isinstance(state, dict):
        raise ValueError("cursor state is not an object")
    timestamp = state["t"]
    ids = state.get("i", [])
    open_tools = state.get("o", [])
    outcome = state.get("s")
    last = state.get("l")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
        raise ValueError("bad timestamp")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError("bad ids")
    if not isinstance(open_tools, list) or not all(isinstance(t, str) for t in open_tools):
        raise ValueError("bad open tools")
    if outcome not in (None, "completed", "failed", "waiting_for_input", "session_closed"):
        raise ValueError("bad outcome")
    if last is not None and (not isinstance(last, int) or isinstance(last, bool)):
        raise ValueError("bad last event time")
    skew = state.get("k", 0)
    if not isinstance(skew, int) or isinstance(skew, bool):
        raise ValueError("bad clock skew")
    error = state.get("e")
    waiting = state.get("w")
    if error is not None and not isinstance(error, str):
        raise ValueError("bad error text")
    if waiting is not None and not (isinstance(waiting, dict) and all(isinstance(v, str) for v in waiting.values())):
        raise ValueError("bad waiting_for")
    progress = TurnProgress(
        answered=bool(state.get("a")),
        open_tools=tuple(open_tools),
        outcome=outcome,
        error=error,
        waiting_for=WaitingFor.model_validate(waiting) if waiting else None,
        last_event_ms=last,
    )
    return Cursor(timestamp=timestamp, seen_at_timestamp=frozenset(ids), progress=progress, clock_skew_ms=skew)
