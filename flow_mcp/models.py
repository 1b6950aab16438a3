"""Wire models of the FlowHunt API (tolerant) and the result models of the MCP tools.

Wire models validate only what flow_mcp relies on; every other field, unknown ``action_type`` or
``event_type`` value and any ``metadata`` shape passes through untouched, because FlowHunt adds
new ones between releases.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# ---------------------------------------------------------------------------------------------
# Wire models

AI_MODELS = ("Claude Sonnet 4.6", "GPT4.1", "O4 Mini", "O3 Mini")
"""The ``ai_model`` values FlowHunt's invoke accepts."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class SessionCreated(_Wire):
    """Body of ``POST /v3/flow-assistants/create``."""

    session_id: str = Field(min_length=1)
    created_at: str = ""

    @field_validator("created_at", mode="before")
    @classmethod
    def _any_to_str(cls, value: Any) -> str:
        return "" if value is None else str(value)


class RawEvent(_Wire):
    """One FlowSessionEvent as FlowHunt sends it. Only the id and timestamp are required."""

    event_id: str = Field(min_length=1)
    # Bounded so a junk value cannot push the cursor past every real event (10**16 ms is year 318857).
    created_at_timestamp: int = Field(ge=0, lt=10**16)
    event_type: str = ""
    action_type: str = ""
    credits: float = 0.0
    metadata: Any = None
    component_name: str | None = None
    run_id: str | None = None
    session_id: str | None = None

    @field_validator("event_id", mode="before")
    @classmethod
    def _id_to_str(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("created_at_timestamp", mode="before")
    @classmethod
    def _epoch_ms(cls, value: Any) -> Any:
        # FlowHunt sends epoch milliseconds as a string of digits.
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        return value

    @field_validator("event_type", "action_type", mode="before")
    @classmethod
    def _label(cls, value: Any) -> str:
        return value if isinstance(value, str) else ""

    @field_validator("credits", mode="before")
    @classmethod
    def _number(cls, value: Any) -> float:
        if isinstance(value, bool):
            return 0.0
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            return 0.0
        return number if number == number and abs(number) != float("inf") else 0.0

    @field_validator("component_name", "run_id", "session_id", mode="before")
    @classmethod
    def _optional_str(cls, value: Any) -> str | None:
        return value if isinstance(value, str) else None

    @field_validator("metadata", mode="after")
    @classmethod
    def _bounded_depth(cls, value: Any) -> Any:
        return _limit_depth(value, _MAX_METADATA_DEPTH)

    @property
    def meta(self) -> dict[str, Any]:
        """The metadata when it is an object, else an empty dict (never raises)."""
        return self.metadata if isinstance(self.metadata, dict) else {}


_MAX_METADATA_DEPTH = 64  # far beyond any real metadata; deeper JSON cannot even be serialized back out
_TOO_DEEP = "[nested too deep]"


def _limit_depth(value: Any, depth: int) -> Any:
    """``value`` with anything nested deeper than ``depth`` replaced by a marker."""
    if not isinstance(value, dict | list):
        return value
    if depth <= 0:
        return _TOO_DEEP
    if isinstance(value, dict):
        return {key: _limit_depth(item, depth - 1) for key, item in value.items()}
    return [_limit_depth(item, depth - 1) for item in value]


class Invocation(_Wire):
    """Body of ``POST /v3/flow-assistants/{session_id}/invoke``."""

    message_id: str = ""
    created_at: str = Field(pattern=r"^\d{1,20}$")
    cached_events: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("message_id", "created_at", mode="before")
    @classmethod
    def _any_to_str(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("cached_events", mode="before")
    @classmethod
    def _list_or_empty(cls, value: Any) -> Any:
        return [] if value is None else value


# ---------------------------------------------------------------------------------------------
# Tool result models (they become each tool's outputSchema)

TurnStatus = Literal["running", "completed", "failed", "waiting_for_input", "session_closed"]


class Event(BaseModel):
    """A FlowHunt event, normalized for tools."""

    event_id: str
    type: str = Field(description="FlowHunt action_type, e.g. message, v3_tool_call_start, add_component.")
    role: str = Field(description="FlowHunt event_type: ai, human, system or flow_assistant_action.")
    at: int = Field(description="FlowHunt timestamp, epoch milliseconds.")
    summary: str = Field(description="One line saying what happened.")
    text: str | None = Field(default=None, description="The message or other human-readable text, if any.")
    credits: float = 0.0
    component_name: str | None = None
    metadata: Any = Field(default=None, description="FlowHunt's metadata as received.")


class WaitingFor(BaseModel):
    """What a turn is waiting for when its status is waiting_for_input."""

    kind: str = Field(description="The FlowHunt action_type that asked for input.")
    prompt: str | None = None
    hook_id: str | None = None
    link: str | None = None


class ToolCall(BaseModel):
    """A tool the assistant ran during the turn."""

    name: str
    input: str | None = None
    output: str | None = Field(default=None, description="The tool's response, truncated.")
    duration_ms: float | None = None
    finished: bool = True


class FlowAction(BaseModel):
    """An edit the assistant made to a flow."""

    type: str
    summary: str
    component_id: str | None = None
    component_type: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class CreateSessionResult(BaseModel):
    session_id: str = Field(description="Pass to invoke, poll_events or ask.")
    created_at: str
    workspace_id: str


class InvokeResult(BaseModel):
    session_id: str
    message_id: str
    created_at: str
    cursor: str = Field(description="Pass to poll_events to receive the turn's events.")
    events: list[Event] = Field(description="Events FlowHunt returned at once (usually none).")


class PollResult(BaseModel):
    session_id: str
    events: list[Event] = Field(description="New events, oldest first, each delivered once.")
    cursor: str = Field(description="Pass to the next poll_events call.")
    status: TurnStatus
    more: bool = Field(default=False, description="More events are waiting: call poll_events again right away.")
    answer: str | None = Field(default=None, description="The newest assistant answer in these events, if any.")
    waiting_for: WaitingFor | None = None
    error: str | None = None


class AskResult(BaseModel):
    session_id: str = Field(description="Reuse it in the next ask to continue the conversation.")
    message_id: str
    status: TurnStatus
    answer: str | None = Field(description="The assistant's last answer of the turn.")
    messages: list[str] = Field(description="Every assistant message of the turn, in order.")
    tool_calls: list[ToolCall]
    actions: list[FlowAction] = Field(description="Flow edits made during the turn.")
    credits: float
    events_count: int
    cursor: str = Field(description="Pass to poll_events to continue a turn that is still running.")
    waiting_for: WaitingFor | None = None
    error: str | None = None
