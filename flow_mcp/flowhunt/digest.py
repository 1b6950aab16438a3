"""The digest of a whole turn, for ask's result: answers, tool calls and flow edits, in bounded memory. Pure."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from flow_mcp.flowhunt.events import is_answer, message_text, milliseconds, summarize, text_of
from flow_mcp.flowhunt.wire import RawEvent

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
        if is_answer(event) and (text := message_text(meta)):
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
