"""Pure turn logic: the cursor, de-duplication, turn state and event summaries. No I/O.

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
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from flow_mcp.errors import InvalidArgumentError
from flow_mcp.events import failure_text, is_answer, milliseconds, summarize, text_of, waiting_for
from flow_mcp.models import FlowAction, RawEvent, ToolCall, TurnStatus, WaitingFor

_CURSOR_PREFIX = "c1."
_MAX_CURSOR_CHARS = 32_768  # what encode() can produce at most, with room to spare
_MAX_IDS_AT_TIMESTAMP = 128
_MAX_LATENCY_CREDIT_MS = 500
_MAX_ID_CHARS = 64  # longer event ids ride in the cursor as a digest
_MAX_CARRIED_TEXT = 500  # error and prompt texts ride in the cursor so a later poll can still report them
_RAW_TIMESTAMP = re.compile(r"[0-9]{1,20}")  # ASCII digits only, used with fullmatch

WAITING_ACTIONS = frozenset(
    {"hook_waiting_for_input", "hitl_approval_requested", "integration_missing", "file_access_required"}
)
FLOW_EDIT_ACTIONS = frozenset(
    {
        "add_component",
        "delete_component",
        "update_component",
        "connect_components",
        "add_connection",
        "delete_connection",
        "create_blank_flow",
    }
)

# ---------------------------------------------------------------------------------------------
# Turn progress: what the events of the turn so far say about it


@dataclass(frozen=True)
class TurnProgress:
    """The facts about a turn that its status is derived from."""

    answered: bool = False
    open_tools: tuple[str, ...] = ()
    outcome: TurnStatus | None = None  # a latched end: completed, failed, waiting_for_input, session_closed
    error: str | None = None
    waiting_for: WaitingFor | None = None
    last_event_ms: int | None = None  # local wall-clock time the last new event was received


def advance(progress: TurnProgress, events: Sequence[RawEvent], now_ms: int) -> TurnProgress:
    """Fold newly delivered events (oldest first) into the turn's progress."""
    for event in events:
        progress = _fold(progress, event)
    if events:
        # The settle window runs from when the last event happened, not from when a poll happened to see it:
        # FlowHunt's timestamp, trusted up to _MAX_LATENCY_CREDIT_MS back (its clock is not ours).
        happened = min(now_ms, max(event.created_at_timestamp for event in events))
        progress = replace(progress, last_event_ms=max(happened, now_ms - _MAX_LATENCY_CREDIT_MS))
    return progress


def _fold(progress: TurnProgress, event: RawEvent) -> TurnProgress:
    kind, meta = event.action_type, event.meta
    if event.event_type == "human" and kind == "message":
        return TurnProgress()  # a person's message starts a new turn
    if kind == "session_closed":
        return replace(progress, outcome="session_closed", error=text_of(meta, "message") or "The session was closed.")
    if progress.outcome is not None:
        return progress  # an ended turn stays ended; late events are still delivered
    if kind == "failed":
        return replace(progress, outcome="failed", error=failure_text(event))
    if kind in WAITING_ACTIONS:
        return replace(progress, outcome="waiting_for_input", waiting_for=waiting_for(event))
    if kind == "v3_tool_call_start":
        return replace(progress, open_tools=(*progress.open_tools, _tool_key(meta)))
    if kind == "v3_tool_call_end":
        return replace(progress, open_tools=_close_tool(progress.open_tools, _tool_key(meta)))
    if kind == "message" and event.event_type == "ai":
        return replace(progress, answered=True)
    return progress


def _tool_key(meta: dict[str, Any]) -> str:
    # Cut to what a cursor carries, so a start read in one call matches its end read in the next.
    return (text_of(meta, "tool_name") or "tool")[:_MAX_ID_CHARS]


def _close_tool(open_tools: tuple[str, ...], name: str) -> tuple[str, ...]:
    if name in open_tools:
        index = open_tools.index(name)
        return open_tools[:index] + open_tools[index + 1 :]
    return open_tools[1:] if name == "tool" else open_tools


def status_of(progress: TurnProgress, now_ms: int, settle_ms: int) -> TurnStatus:
    """The turn's status now: completed needs an answer, no open tool call and a quiet settle window."""
    if progress.outcome is not None:
        return progress.outcome
    if progress.answered and not progress.open_tools:
        quiet_since = progress.last_event_ms if progress.last_event_ms is not None else now_ms
        if now_ms - quiet_since >= settle_ms:
            return "completed"
    return "running"


def settles_at(progress: TurnProgress, settle_ms: int) -> int | None:
    """Local time (ms) at which the turn completes if nothing new arrives, or None if it cannot yet."""
    if progress.outcome is not None or not progress.answered or progress.open_tools:
        return None
    return (progress.last_event_ms or 0) + settle_ms


def latch_completed(progress: TurnProgress, now_ms: int, settle_ms: int) -> TurnProgress:
    """Record a completion once seen, so that the status never goes back to running."""
    if progress.outcome is None and status_of(progress, now_ms, settle_ms) == "completed":
        return replace(progress, outcome="completed")
    return progress


# ---------------------------------------------------------------------------------------------
# The cursor


@dataclass(frozen=True)
class Cursor:
    """Where a reader stands in a session's event stream, and what the turn so far looked like."""

    timestamp: int
    seen_at_timestamp: frozenset[str] = frozenset()
    progress: TurnProgress = field(default_factory=TurnProgress)

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
        if progress.error:
            state["e"] = progress.error[:_MAX_CARRIED_TEXT]
        if progress.waiting_for:
            state["w"] = {k: v[:_MAX_CARRIED_TEXT] for k, v in progress.waiting_for.model_dump().items() if v}
        raw = json.dumps(state, separators=(",", ":"), ensure_ascii=True).encode()
        return _CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


CURSOR_HELP = "Pass the cursor exactly as returned by invoke, poll_events or ask, or a FlowHunt timestamp (digits)."


def _id_key(event_id: str) -> str:
    """How an event id is remembered in a cursor: as is, or as a digest when it is very long."""
    if len(event_id) <= _MAX_ID_CHARS:
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
    return Cursor(timestamp=timestamp, seen_at_timestamp=frozenset(ids), progress=progress)


# ---------------------------------------------------------------------------------------------
# The digest of a whole turn, for ask's result


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters with a marker that says how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [truncated {len(text) - limit} of {len(text)} characters]"


@dataclass
class TurnDigest:
    """What ask reports about a turn, built up event by event with bounded memory."""

    tool_output_limit: int = 2000
    max_items: int = 200
    messages: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    actions: list[FlowAction] = field(default_factory=list)
    credits: float = 0.0
    events_count: int = 0

    def add(self, event: RawEvent) -> None:
        self.events_count += 1
        total = self.credits + event.credits
        self.credits = total if math.isfinite(total) else self.credits  # absurd credits must not make it inf
        meta, kind = event.meta, event.action_type
        if is_answer(event) and (text := text_of(meta, "message")):
            self._append(self.messages, text)
        elif kind == "v3_tool_call_start":
            self._append(
                self.tool_calls, ToolCall(name=text_of(meta, "tool_name") or "tool", input=_input(meta), finished=False)
            )
        elif kind in ("v3_tool_call_end", "tool_call"):
            self._finish_tool(event)
        elif kind in FLOW_EDIT_ACTIONS:
            details = {k: v for k, v in meta.items() if k not in ("component_id", "component_type")}
            action = FlowAction(
                type=kind,
                summary=summarize(event),
                component_id=text_of(meta, "component_id"),
                component_type=text_of(meta, "component_type"),
                details=details,
            )
            self._append(self.actions, action)

    def _finish_tool(self, event: RawEvent) -> None:
        meta = event.meta
        name = text_of(meta, "tool_name") or "tool"
        output = meta.get("tool_response")
        output_text = None if output is None else truncate(_as_text(output), self.tool_output_limit)
        duration = meta.get("duration_ms")
        duration_ms = milliseconds(duration)
        for call in self.tool_calls:
            if not call.finished and call.name == name:
                call.output, call.duration_ms, call.finished = output_text, duration_ms, True
                return
        self._append(
            self.tool_calls, ToolCall(name=name, input=_input(meta), output=output_text, duration_ms=duration_ms)
        )

    def _append(self, items: list[Any], item: Any) -> None:
        # Keep the newest items: the end of a turn matters most to the caller.
        items.append(item)
        if len(items) > self.max_items:
            del items[0]


def _input(meta: dict[str, Any]) -> str | None:
    query = meta.get("agent_query")
    if query is None:
        return None
    return truncate(_as_text(query), 2000)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)
