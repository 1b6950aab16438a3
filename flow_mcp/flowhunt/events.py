"""FlowHunt events for people: one-line summaries, the text an event carries, the normalized form.

Pure functions of one event. Every action type FlowHunt documents gets its own summary; unknown
types get a generic one, and no metadata shape makes them fail.
"""

from __future__ import annotations

import json
import math
from typing import Any, TypeGuard

from pydantic import BaseModel, Field

from flow_mcp.flowhunt.wire import RawEvent


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
    metadata: Any = Field(
        default=None,
        description="FlowHunt's metadata as received.",
        json_schema_extra={"type": ["object", "array", "string", "number", "boolean", "null"]},
    )


def summarize(event: RawEvent) -> str:
    """One line a person can read, for any action type (known or not)."""
    return clip(_summary(event))


def _summary(event: RawEvent) -> str:
    meta, kind = event.meta, event.action_type
    tool = text_of(meta, "tool_name") or "a tool"
    component = _component_label(event)
    match kind:
        case "message":
            if event.event_type == "ai":
                return "Answer ready"
            return "Message received" if event.event_type == "human" else "System message"
        case "loading":
            return clip(text_of(meta, "loading_desc") or f"Working: {tool}")
        case "v3_flow_assistant_init":
            return f"Starting the assistant: {text_of(meta, 'stage') or 'initializing'}"
        case "agent_initialized":
            return f"Agent ready: {text_of(meta, 'agent_name') or 'assistant'}"
        case "v3_tool_call_start":
            return f"Calling tool {tool}"
        case "v3_tool_call_end":
            duration = meta.get("duration_ms")
            seconds = milliseconds(duration)
            took = f" in {seconds / 1000:.1f} s" if seconds is not None else ""
            return f"Tool {tool} finished{took}"
        case "tool_call":
            return f"Tool {tool} ran"
        case "task_response":
            return f"Task {text_of(meta, 'task_name') or ''} finished".replace("  ", " ")
        case "failed":
            return clip(f"Failed: {failure_text(event)}")
        case "agent_cot":
            return "Thinking"
        case "todo_list":
            todos = meta.get("todos")
            return f"Plan updated ({len(todos)} items)" if isinstance(todos, list) else "Plan updated"
        case "artefacts":
            files = meta.get("artefacts")
            return f"Files produced ({len(files)})" if isinstance(files, list) else "Files produced"
        case "attachment":
            return f"Attachment {text_of(meta, 'file_name') or ''}".strip()
        case "add_component":
            return f"Added component {component}"
        case "update_component":
            return f"Updated component {component}"
        case "delete_component":
            return f"Removed component {component}"
        case "add_connection" | "connect_components":
            return "Connected components"
        case "delete_connection":
            return "Removed a connection"
        case "create_blank_flow":
            return f"Created flow {text_of(meta, 'flow_name') or ''}".strip()
        case "hook_waiting_for_input":
            return clip(
                f"Waiting for input: {text_of(meta, 'prompt_message') or text_of(meta, 'hook_name') or 'a reply'}"
            )
        case "hitl_approval_requested":
            return f"Waiting for approval to run {tool}"
        case "integration_missing":
            return f"Integration needed: {text_of(meta, 'slug') or 'unknown'}"
        case "file_access_required":
            return "Waiting for file access"
        case "evaluate_client_js":
            return "Asked the client to run a script"
        case "session_closed":
            return "Session closed"
        case "subagent_prompt":
            return f"Delegated to {text_of(meta, 'target_agent') or 'a sub-agent'}"
        case "message_feedback":
            return "Feedback recorded"
    label = kind.replace("_", " ").strip() if kind else "event"
    return clip(f"Event: {label}" + (f" ({event.component_name})" if event.component_name else ""))


def normalize(event: RawEvent) -> Event:
    """The tool-facing form of a FlowHunt event."""
    return Event(
        event_id=event.event_id,
        type=event.action_type,
        role=event.event_type,
        at=event.created_at_timestamp,
        summary=summarize(event),
        text=event_text(event),
        credits=event.credits,
        component_name=event.component_name,
        metadata=event.metadata,
    )


def event_text(event: RawEvent) -> str | None:
    """The human-readable text an event carries, if any."""
    meta = event.meta
    match event.action_type:
        case "message" | "v3_flow_assistant_init":
            return message_text(meta)
        case "failed":
            return failure_text(event)
        case "agent_cot":
            return text_of(meta, "content")
        case "hook_waiting_for_input":
            return text_of(meta, "prompt_message")
        case "file_access_required":
            return text_of(meta, "message")
        case "subagent_prompt":
            return text_of(meta, "task")
    return None


def is_answer(event: RawEvent) -> bool:
    """True for an assistant message: the answer of a turn."""
    return event.action_type == "message" and event.event_type == "ai"


def is_person_message(event: RawEvent) -> bool:
    """True for a person's message: it opens a turn."""
    return event.action_type == "message" and event.event_type == "human"


def failure_text(event: RawEvent) -> str:
    meta = event.meta
    for key in ("message", "error", "detail", "reason"):
        if text := text_of(meta, key):
            return text
    if isinstance(event.metadata, str) and event.metadata.strip():
        return event.metadata.strip()
    return "The assistant reported a failure without details."


def _component_label(event: RawEvent) -> str:
    meta = event.meta
    return (
        text_of(meta, "component_display_name")
        or text_of(meta, "component_type")
        or event.component_name
        or text_of(meta, "component_id")
        or "a component"
    )


def message_text(meta: dict[str, Any]) -> str | None:
    """A message's text; one FlowHunt sent as an object or a list comes as its JSON, rather than not at all."""
    value = meta.get("message")
    if isinstance(value, dict | list) and value:
        return json.dumps(value, ensure_ascii=False)
    return text_of(meta, "message")


def text_of(meta: dict[str, Any], key: str) -> str | None:
    """A non-empty string (or a number as text) at ``key``, else None."""
    value = meta.get(key)
    if isinstance(value, str) and value.strip():
        return value
    if is_number(value):
        return str(value)
    return None


def milliseconds(value: Any) -> float | None:
    """A finite duration from metadata, or None (huge integers and NaN included)."""
    if not is_number(value):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def is_number(value: Any) -> TypeGuard[int | float]:
    """True for int or float, not bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def clip(text: str, limit: int = 200) -> str:
    """One line of at most ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
