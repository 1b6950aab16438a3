"""Pure turn state: what the events of a turn so far say about it, and the turn's status. No I/O.

There is no end-of-turn marker in FlowHunt's API. A turn is done once an answer came, no tool call is open
and nothing new arrived for a settle window; a failure, a question for a person or a closed session end it
at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, Field

from flow_mcp.flowhunt.events import failure_text, is_person_message, text_of
from flow_mcp.flowhunt.wire import RawEvent

MAX_ID_CHARS = 64  # longer event ids and tool names ride in the cursor cut or as a digest

TurnStatus = Literal["running", "completed", "failed", "waiting_for_input", "session_closed"]

WAITING_ACTIONS = frozenset(
    {"hook_waiting_for_input", "hitl_approval_requested", "integration_missing", "file_access_required"}
)


class WaitingFor(BaseModel):
    """What a turn is waiting for when its status is waiting_for_input."""

    kind: str = Field(description="The FlowHunt action_type that asked for input.")
    prompt: str | None = None
    hook_id: str | None = None
    link: str | None = None


@dataclass(frozen=True)
class TurnProgress:
    """The facts about a turn that its status is derived from."""

    answered: bool = False
    open_tools: tuple[str, ...] = ()
    outcome: TurnStatus | None = None  # a latched end: completed, failed, waiting_for_input, session_closed
    error: str | None = None
    waiting_for: WaitingFor | None = None
    last_event_ms: int | None = None  # local wall-clock time the last new event was received


def advance(
    progress: TurnProgress,
    events: Sequence[RawEvent],
    now_ms: int,
    clock_skew_ms: int = 0,
    *,
    delivered_until: int | None = None,
) -> TurnProgress:
    """Fold newly delivered events (oldest first) into the turn's progress.

    ``clock_skew_ms`` is how far FlowHunt's clock runs ahead of ours (negative: behind), when known.
    ``delivered_until`` is the newest timestamp delivered before these events: an event older than it was made
    visible late, so a person's message among those belongs to the turn already followed and opens none.
    """
    for event in events:
        late = delivered_until is not None and event.created_at_timestamp < delivered_until
        progress = _fold(progress, event, late)
    if events:
        # The settle window runs from when the last event happened, not from when a poll happened to see it:
        # FlowHunt's timestamp on our clock. So an answer that FlowHunt stamped longer than the window ago (a
        # replayed session) is completed at once, while one that just arrived still waits the window out.
        # Never later than now: a clock running ahead must not stretch the window. Never earlier than before:
        # an event made visible late must not cut the window short.
        happened = min(now_ms, max(event.created_at_timestamp for event in events) - clock_skew_ms)
        if progress.last_event_ms is not None:
            happened = max(happened, progress.last_event_ms)
        progress = replace(progress, last_event_ms=happened)
    return progress


def _fold(progress: TurnProgress, event: RawEvent, late: bool = False) -> TurnProgress:
    kind, meta = event.action_type, event.meta
    if is_person_message(event):
        return progress if late else TurnProgress()  # a person's message starts a new turn
    if kind == "session_closed":
        return replace(progress, outcome="session_closed", error=text_of(meta, "message") or "The session was closed.")
    if progress.outcome is not None:
        return progress  # an ended turn stays ended; late events are still delivered
    if kind == "failed":
        return replace(progress, outcome="failed", error=failure_text(event))
    if kind in WAITING_ACTIONS:
        return replace(progress, outcome="waiting_for_input", waiting_for=waiting_for(event))
    if kind == "v3_tool_call_start":
        return replace(progress, open_tools=(*progress.open_tools, tool_key(meta)))
    if kind == "v3_tool_call_end":
        return replace(progress, open_tools=close_tool(progress.open_tools, tool_key(meta)))
    if kind == "message" and event.event_type == "ai":
        return replace(progress, answered=True)
    return progress


def tool_key(meta: dict[str, Any]) -> str:
    """The name an open tool call is known by."""
    # Cut to what a cursor carries, so a start read in one call matches its end read in the next.
    return (text_of(meta, "tool_name") or "tool")[:MAX_ID_CHARS]


def closing(open_tools: Sequence[str], name: str) -> int | None:
    """Which open tool call an end named ``name`` closes: the oldest of that name (an unnamed end: the oldest)."""
    if name in open_tools:
        return list(open_tools).index(name)
    return 0 if name == "tool" and open_tools else None


def close_tool(open_tools: tuple[str, ...], name: str) -> tuple[str, ...]:
    index = closing(open_tools, name)
    return open_tools if index is None else open_tools[:index] + open_tools[index + 1 :]


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


def waiting_for(event: RawEvent) -> WaitingFor:
    """What a waiting event asks of a person."""
    meta = event.meta
    prompt = (
        text_of(meta, "prompt_message")
        or text_of(meta, "message")
        or text_of(meta, "tool_description")
        or (f"Approve running {text_of(meta, 'tool_name')}" if text_of(meta, "tool_name") else None)
    )
    return WaitingFor(
        kind=event.action_type,
        prompt=prompt,
        hook_id=text_of(meta, "hook_id"),
        link=text_of(meta, "integration_url") or text_of(meta, "link") or text_of(meta, "url"),
    )


def causal_order(event: RawEvent) -> tuple[int, int]:
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
