"""Wire models of the FlowHunt API: tolerant, raw.

Wire models validate only what flow_mcp relies on; every other field, unknown ``action_type`` or
``event_type`` value and any ``metadata`` shape passes through untouched, because FlowHunt adds
new ones between releases.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
