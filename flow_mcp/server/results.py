"""What the tools return: the result models (each tool's outputSchema) and their text.

Many MCP hosts show only a tool's text, never its structured content, so every result has a readable text with
the answer first; failures become error texts that say what to do next, never a secret or a traceback.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from flow_mcp.errors import (
    AuthError,
    ConfigurationError,
    FlowHuntError,
    FlowMCPError,
    InvalidArgumentError,
    MissingKeyError,
    NotDeliveredError,
    NotFoundError,
    OutOfCreditsError,
    RateLimitError,
    ResponseShapeError,
    ResponseTooLargeError,
    ServerError,
    TransportError,
    ValidationError,
    may_have_arrived,
    sentences,
)
from flow_mcp.flowhunt.digest import FlowAction, ToolCall, truncate
from flow_mcp.flowhunt.events import Event
from flow_mcp.flowhunt.turn import TurnStatus, WaitingFor

MISSING_KEY_HELP = (
    "FLOWHUNT_API_KEY is not set. Put it in the env block of this MCP server's config in your host "
    '(e.g. "env": {"FLOWHUNT_API_KEY": "..."}), or pass --api-key; to try flow_mcp without an account, '
    "start it with --sandbox."
)


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
    note: str | None = Field(
        default=None, description="Why the user's answer to the turn's question did not reach FlowHunt."
    )


# -- texts --------------------------------------------------------------------------------


RESUME_REFUSED = "FlowHunt does not let this session's question be answered through its API."


def continue_hint(session_id: str, cursor: str, wait_seconds: int = 30) -> str:
    """The poll_events call that goes on from ``cursor`` (no wait_seconds: fetch what is there now)."""
    wait = f", wait_seconds={wait_seconds}" if wait_seconds else ""
    return f'poll_events(session_id="{session_id}", cursor="{cursor}"{wait})'


def create_session_text(result: CreateSessionResult) -> str:
    return (
        f"Session {result.session_id} created in workspace {result.workspace_id}.\n"
        f'Next: ask(message=..., session_id="{result.session_id}"), or invoke + poll_events.'
    )


def invoke_text(result: InvokeResult) -> str:
    lines = [f"Message sent (message_id {result.message_id}). The assistant is working on it."]
    lines += _event_lines(result.events)
    lines.append(f"Next: {continue_hint(result.session_id, result.cursor)} until status is no longer 'running'.")
    return "\n".join(lines)


def poll_text(result: PollResult) -> str:
    lines: list[str] = []
    if result.answer:
        lines += [result.answer, ""]
    lines.append(f"Status: {result.status}. {len(result.events)} new event(s).")
    lines += _event_lines(result.events)
    lines += _ending_lines(result.status, result.error, result.waiting_for)
    if result.more:
        lines.append(f"More events are waiting: {continue_hint(result.session_id, result.cursor, 0)}")
    elif result.status == "running":
        lines.append(f"Next: {continue_hint(result.session_id, result.cursor)}")
    return "\n".join(lines)


def ask_text(result: AskResult) -> str:
    lines: list[str] = []
    if result.answer:
        lines += [result.answer, ""]
    lines.append(f"Status: {result.status}. Session {result.session_id}, {result.events_count} event(s).")
    if result.tool_calls:
        lines.append("Tools used: " + ", ".join(call.name for call in result.tool_calls))
    if result.actions:
        lines.append("Flow edits: " + "; ".join(action.summary for action in result.actions))
    if result.note:
        lines.append(result.note)
    lines += _ending_lines(result.status, result.error, result.waiting_for)
    if result.status == "running":
        lines.append(
            "The turn is still running on FlowHunt and nothing is lost. "
            f"Continue with {continue_hint(result.session_id, result.cursor)} until status is no longer 'running'."
        )
    elif result.status in ("completed", "waiting_for_input"):
        lines.append(f'To continue the conversation: ask(message=..., session_id="{result.session_id}")')
    return "\n".join(lines)


def _event_lines(events: list[Event]) -> list[str]:
    return [f"- {event.summary}" for event in events]


def _ending_lines(status: str, error: str | None, waiting_for: WaitingFor | None) -> list[str]:
    lines: list[str] = []
    if status == "failed":
        lines.append(f"The assistant failed: {error or 'no details given'}")
    elif status == "session_closed":
        lines.append("The session is closed: start a new one with create_session or ask without session_id.")
    if waiting_for is not None:
        lines.append(f"The assistant is waiting for input ({waiting_for.kind}): {waiting_for.prompt or ''}".rstrip())
        if waiting_for.link:
            lines.append(f"Link: {waiting_for.link}")
        lines.append("Answer it in FlowHunt, or send a new message.")
    return lines


# -- size ---------------------------------------------------------------------------------------

RESERVED_BYTES = 48 * 1024
"""Room kept in a result for everything but its events: status, cursor (twice), hints."""


def json_size(value: Any) -> int:
    """At most the bytes ``value`` takes as JSON on the wire (ASCII escapes are never shorter than UTF-8)."""
    return len(json.dumps(value, ensure_ascii=True, separators=(",", ":"), default=str))


def fit(value: Any, room: int) -> Any:
    """``value`` with its longest strings cut, each with a marker saying how much, until its JSON fits ``room``.

    Keys and list items all stay, so the shape (and a result's schema) holds; the caller checks what is left.
    """
    if json_size(value) <= room:
        return value
    low, high = 0, _longest_string(value)
    while low < high:  # the longest cap at which everything fits
        cap = (low + high + 1) // 2
        if json_size(_cut_strings(value, cap)) <= room:
            low = cap
        else:
            high = cap - 1
    return _cut_strings(value, low)


def page(events: Sequence[Event], room: int) -> tuple[list[Event], bool]:
    """The leading events whose share of a result fits ``room`` bytes, and whether any were left out.

    An event too big on its own comes alone with its fields cut, so a page is never empty and following the
    cursor always gets on.
    """
    kept: list[Event] = []
    used = 0
    for event in events:
        cost = _cost(event)
        if used + cost > room:
            if not kept:
                kept.append(_fit_event(event, room))
            return kept, len(kept) < len(events)
        kept.append(event)
        used += cost
    return kept, False


def is_answer_event(event: Event) -> bool:
    return event.type == "message" and event.role == "ai"


def _cost(event: Event) -> int:
    # An answer's text comes twice more: as the result's `answer` and first in its text.
    answer = 2 * json_size(event.text) if is_answer_event(event) else 0
    return json_size(event.model_dump(mode="json")) + len(event.summary) + answer + 8


def _fit_event(event: Event, room: int) -> Event:
    data = fit(event.model_dump(mode="json"), room // 3)
    if json_size(data) > room // 3:  # too many keys or items to cut strings alone: keep the fields, drop metadata
        size = json_size(event.metadata)
        data["metadata"] = f"[cut by flow_mcp: {size} bytes of metadata, too big for one result]"
        data = fit(data, room // 3)
    return Event.model_validate(data)


def _longest_string(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return max((_longest_string(item) for item in items), default=0)


def _cut_strings(value: Any, cap: int) -> Any:
    if isinstance(value, str):
        return truncate(value, cap)
    if isinstance(value, list):
        return [_cut_strings(item, cap) for item in value]
    if isinstance(value, dict):
        return {key: _cut_strings(item, cap) for key, item in value.items()}
    return value


# -- error texts --------------------------------------------------------------------------------


def describe(
    error: FlowMCPError,
    *,
    session_id: str | None = None,
    cursor: str | None = None,
    invoking: bool = False,
    key_header: str | None = None,
) -> str:
    """The tool error text for ``error``, with how to resume when a turn may still be running.

    ``invoking`` says the failure happened while sending a message, which FlowHunt may have taken in;
    ``key_header`` names the header that brought the caller's own FlowHunt key, when it did.
    """
    if isinstance(error, AuthError) and key_header:
        return (
            f"FlowHunt rejected the API key sent in the {key_header} header ({error.status_code}): put your own "
            "FlowHunt API key in that header, in this server's entry of your MCP host's config."
        )
    text = _what_to_do(error, session_id)
    if not session_id or isinstance(error, InvalidArgumentError | NotFoundError | ConfigurationError):
        return text
    if cursor:
        return sentences(
            text,
            f"The turn may still be running on FlowHunt and nothing is lost: resume with "
            f"{continue_hint(session_id, cursor)}.",
        )
    if invoking and isinstance(error, FlowHuntError) and not isinstance(error, NotDeliveredError):
        if may_have_arrived(error):
            return sentences(
                text,
                f"The message may have reached FlowHunt: check with {continue_hint(session_id, '0', 0)} before "
                "sending it again.",
            )
        return sentences(text, "FlowHunt did not take the message in, so sending it again is safe.")
    return text


def _what_to_do(error: FlowMCPError, session_id: str | None) -> str:
    if isinstance(error, MissingKeyError):
        return MISSING_KEY_HELP  # the client's own text is for library users; this one is for MCP hosts
    if isinstance(error, InvalidArgumentError | ConfigurationError):
        return str(error)
    if isinstance(error, NotFoundError):
        which = f"'{session_id}'" if session_id else ""
        return (
            f"Unknown session {which}: it does not exist or has expired. "
            "Call create_session, or ask without session_id, to start a new one."
        ).replace("  ", " ")
    if isinstance(error, AuthError):
        return (
            f"FlowHunt rejected the API key ({error.status_code}): check FLOWHUNT_API_KEY and FLOWHUNT_WORKSPACE_ID. "
            "If your key must be sent as an 'Api-Key' header, set FLOWHUNT_AUTH_HEADER=api-key."
        )
    if isinstance(error, RateLimitError):
        # Rounded up: "Retry in 0 s" would invite a retry that is sure to fail.
        wait = f" Retry in {max(1, math.ceil(error.retry_after))} s." if error.retry_after is not None else ""
        return "FlowHunt is rate limiting this API key (429)." + (wait or " Retry in a minute.")
    if isinstance(error, OutOfCreditsError):
        return (
            "FlowHunt says the workspace is out of credits (402): top up credits in FlowHunt (or ask the "
            "workspace's owner to), then retry."
        )
    if isinstance(error, ValidationError):
        return f"FlowHunt rejected the request (422): {error.detail or 'no details'}. Fix the arguments and retry."
    if isinstance(error, ServerError):
        return f"FlowHunt failed ({error.status_code}){': ' + error.detail if error.detail else ''}. Retry shortly."
    if isinstance(error, TransportError):
        return sentences(str(error), "Check FLOWHUNT_BASE_URL and the network, then retry.")
    if isinstance(error, ResponseTooLargeError):
        return str(error)  # the same answer would come again: retrying soon does not help
    if isinstance(error, ResponseShapeError):
        return sentences(str(error), "Retry shortly.")
    return str(error)
