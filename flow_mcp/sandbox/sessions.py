"""The records of a session: its scheduled events, the invokes it accepted, the hooks it waits on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flow_mcp.sandbox.flows import PublishedFlow
from flow_mcp.sandbox.script import WaitingEvent

JSONDict = dict[str, object]

# The two kinds of session: a Flow Assistant's (V3) and a published flow's (V2).
ASSISTANT = "assistant"
FLOW = "flow"
# Waiting events that carry a hook_id a person answers through resume-hook.
HOOK_EVENTS = frozenset({"hook_waiting_for_input", "hitl_approval_requested"})


@dataclass
class ScheduledEvent:
    """An event and the millisecond it becomes visible."""

    seq: int
    timestamp_ms: int
    payload: JSONDict


@dataclass
class Invocation:
    """One invoke the sandbox accepted (a second one with the same message is a double send)."""

    message_id: str
    message: str
    ai_model: str | None
    created_at_ms: int
    overlapped_previous_turn: bool
    fault: str | None
    # A flow with enable_cache answering a message it answered before: the answer comes back with the invoke.
    cached_events: list[JSONDict] = field(default_factory=list)

    def as_dict(self) -> JSONDict:
        """JSON-ready form for the control endpoint."""
        return {
            "message_id": self.message_id,
            "message": self.message,
            "ai_model": self.ai_model,
            "created_at": str(self.created_at_ms),
            "overlapped_previous_turn": self.overlapped_previous_turn,
            "fault": self.fault,
            "cached": bool(self.cached_events),
        }


@dataclass
class Hook:
    """A hook a turn waits on; one-shot: `waiting` becomes `resumed` (or `expired` when the turn is cancelled)."""

    waiting: WaitingEvent
    run_id: str
    visible_at_ms: int
    status: str = "waiting"


@dataclass
class Session:
    """A Flow Assistant session (`kind` "assistant", V3) or a session of a published flow (`kind` "flow", V2)."""

    session_id: str
    workspace_id: str
    created_at: datetime
    context_flow_id: str | None
    kind: str = ASSISTANT
    flow: PublishedFlow | None = None
    variables: dict[str, str] = field(default_factory=dict)
    flow_branch: str | None = None
    attachments: list[JSONDict] = field(default_factory=list)
    hooks: dict[str, Hook] = field(default_factory=dict)
    resumes: list[JSONDict] = field(default_factory=list)
    events: list[ScheduledEvent] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    turns: int = 0
    turn_ends_at_ms: int = 0
    # The latest "now" a poll of this session has answered for; nothing may be scheduled at or before it,
    # or a client whose cursor already passed that millisecond would never see the event.
    horizon_ms: int = 0
    closes_at_ms: int | None = None
