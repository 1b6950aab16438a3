"""What the tools return: the result models (each tool's outputSchema) and their text.

Many MCP hosts show only a tool's text, never its structured content, so every result has a readable text with
the answer first; failures become error texts that say what to do next, never a secret or a traceback.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, Field

from flow_mcp.errors import (
    AuthError,
    ConfigurationError,
    FlowHuntError,
    FlowMCPError,
    InvalidArgumentError,
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
)
from flow_mcp.flowhunt.digest import FlowAction, ToolCall
from flow_mcp.flowhunt.events import Event
from flow_mcp.flowhunt.turn import TurnStatus, WaitingFor


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


# -- texts --------------------------------------------------------------------------------


def continue_hint(session_id: str, cursor: str, wait_seconds: int = 30) -> str:
    return f'poll_events(session_id="{session_id}", cursor="{cursor}", wait_seconds={wait_seconds})'


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
        lines.append("Answer it in FlowHunt (this API has no resume call), or send a new message.")
    return lines


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
        return text + (
            f' The turn may still be running on FlowHunt and nothing is lost: resume with poll_events(session_id="'
            f'{session_id}", cursor="{cursor}", wait_seconds=30).'
        )
    if invoking and isinstance(error, FlowHuntError) and not isinstance(error, NotDeliveredError):
        if may_have_arrived(error):
            return text + (
                f' The message may have reached FlowHunt: check with poll_events(session_id="{session_id}", '
                'cursor="0") before sending it again.'
            )
        return text + " FlowHunt did not take the message in, so sending it again is safe."
    return text


def _what_to_do(error: FlowMCPError, session_id: str | None) -> str:
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
        return f"{error} Check FLOWHUNT_BASE_URL and the network, then retry."
    if isinstance(error, ResponseTooLargeError):
        return str(error)  # the same answer would come again: retrying soon does not help
    if isinstance(error, ResponseShapeError):
        return f"{error} Retry shortly."
    return str(error)
