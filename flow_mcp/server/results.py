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
    HookNotResumedError,
    InvalidArgumentError,
    MissingKeyError,
    NotDeliveredError,
    NotFoundError,
    NotResumableError,
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
from flow_mcp.flowhunt.client import SessionKind
from flow_mcp.flowhunt.digest import FlowAction, ToolCall
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
    session_id: str = Field(description="Reuse it in the next ask (run_flow for a flow session) to continue.")
    message_id: str = Field(description="The id FlowHunt gave the message; empty after respond.")
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


class FlowInfo(BaseModel):
    flow_id: str = Field(description="Pass to run_flow.")
    name: str
    description: str
    input_hint: str | None = Field(default=None, description="What the flow expects as its message, if it says.")
    tool_name: str | None = Field(
        default=None, description="The tool of its own that runs this flow, if the server offers one (flow tools)."
    )


class ListFlowsResult(BaseModel):
    flows: list[FlowInfo] = Field(description="The workspace's published flows that match, in FlowHunt's order.")
    more: bool = Field(description="More flows match: narrow the query or raise the limit.")


# -- texts --------------------------------------------------------------------------------


RESUME_REFUSED = "FlowHunt does not let this session's question be answered through its API."
ANSWER_UNUSABLE = (
    "The user's answer did not fit the question's form (empty, too long, or of the wrong kind), so nothing was sent "
    "to FlowHunt: ask the user again, or answer with respond."
)


def continue_hint(session_id: str, cursor: str, wait_seconds: int = 30) -> str:
    """The poll_events call that goes on from ``cursor`` (no wait_seconds: fetch what is there now)."""
    wait = f", wait_seconds={wait_seconds}" if wait_seconds else ""
    return f'poll_events(session_id="{session_id}", cursor="{cursor}"{wait})'


def message_hint(session_id: str, kind: SessionKind = "assistant", flow_id: str | None = None) -> str:
    """The call that sends the next message to a session."""
    if kind == "flow":
        flow = f'"{flow_id}"' if flow_id else "..."
        return f'run_flow(flow_id={flow}, message=..., session_id="{session_id}")'
    return f'ask(message=..., session_id="{session_id}")'


def respond_hint(session_id: str, waiting_for: WaitingFor) -> str:
    """The call that answers what a turn waits for."""
    if waiting_for.kind == "hitl_approval_requested":
        message = 'message="approve" (or message="reject: <reason>")'
    else:
        message = "message=<your answer>"
    return f'respond(session_id="{session_id}", hook_id="{waiting_for.hook_id}", {message})'


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


def poll_text(result: PollResult, kind: SessionKind = "assistant") -> str:
    lines: list[str] = []
    if result.answer:
        lines += [result.answer, ""]
    lines.append(f"Status: {result.status}. {len(result.events)} new event(s).")
    lines += _event_lines(result.events)
    lines += _ending_lines(result, message_hint(result.session_id, kind), kind)
    if result.more:
        lines.append(f"More events are waiting: {continue_hint(result.session_id, result.cursor, 0)}")
    elif result.status == "running":
        lines.append(f"Next: {continue_hint(result.session_id, result.cursor)}")
    return "\n".join(lines)


def ask_text(result: AskResult, kind: SessionKind = "assistant", flow_id: str | None = None) -> str:
    """The text of an ask, run_flow or respond result: the answer first, then how to go on."""
    lines: list[str] = []
    next_message = message_hint(result.session_id, kind, flow_id)
    if result.answer:
        lines += [result.answer, ""]
    lines.append(f"Status: {result.status}. Session {result.session_id}, {result.events_count} event(s).")
    if result.tool_calls:
        lines.append("Tools used: " + ", ".join(call.name for call in result.tool_calls))
    if result.actions:
        lines.append("Flow edits: " + "; ".join(action.summary for action in result.actions))
    if result.note:
        lines.append(result.note)
    lines += _ending_lines(result, next_message, kind)
    if result.status == "running":
        lines.append(
            "The turn is still running on FlowHunt and nothing is lost. "
            f"Continue with {continue_hint(result.session_id, result.cursor)} until status is no longer 'running'."
        )
    elif result.status == "completed":
        lines.append(f"To continue the conversation: {next_message}")
    return "\n".join(lines)


def _event_lines(events: list[Event]) -> list[str]:
    return [f"- {event.summary}" for event in events]


def _ending_lines(result: AskResult | PollResult, next_message: str, kind: SessionKind) -> list[str]:
    """How a turn ended, and what to do next: for a waiting turn, how to answer it."""
    lines: list[str] = []
    who = "flow" if kind == "flow" else "assistant"
    if result.status == "failed":
        lines.append(f"The {who} failed: {result.error or 'no details given'}")
    elif result.status == "session_closed":
        start = "run_flow without session_id" if kind == "flow" else "create_session or ask without session_id"
        lines.append(f"The session is closed: start a new one with {start}.")
    waiting_for = result.waiting_for
    if waiting_for is not None:
        lines.append(f"The {who} is waiting for input ({waiting_for.kind}): {waiting_for.prompt or ''}".rstrip())
        if waiting_for.link:
            lines.append(f"Link: {waiting_for.link}")
        if waiting_for.hook_id:
            lines.append(f"Answer it with {respond_hint(result.session_id, waiting_for)}.")
        else:
            where = "open the link" if waiting_for.link else "open FlowHunt"
            lines.append(
                f"Nothing to answer here: a person must act in FlowHunt ({where} and do what it asks), then send a "
                f"new message with {next_message}."
            )
    return lines


def list_flows_text(result: ListFlowsResult) -> str:
    if not result.flows:
        return "No published flow matches. Call list_flows without query to see them all."
    lines = [f"{len(result.flows)} flow(s){' (more match: narrow the query or raise limit)' if result.more else ''}:"]
    for flow in result.flows:
        lines.append(f"- {flow.name} (flow_id {flow.flow_id}): {flow.description or 'no description'}".rstrip())
        if flow.input_hint:
            lines.append(f"  Input: {flow.input_hint}")
    lines.append('Run one with run_flow(flow_id="...", message=...).')
    return "\n".join(lines)


# -- error texts --------------------------------------------------------------------------------


def describe(
    error: FlowMCPError,
    *,
    session_id: str | None = None,
    cursor: str | None = None,
    invoking: bool = False,
    key_header: str | None = None,
    kind: SessionKind = "assistant",
    flow_id: str | None = None,
    resuming: str | None = None,
) -> str:
    """The tool error text for ``error``, with how to resume when a turn may still be running.

    ``invoking`` says the failure happened while sending a message, which FlowHunt may have taken in;
    ``resuming`` (a cursor) that it happened while answering a hook, which FlowHunt may have taken in;
    ``key_header`` names the header that brought the caller's own FlowHunt key, when it did; ``kind`` and
    ``flow_id`` say which session a tool worked on, or which flow it was opening one of.
    """
    if isinstance(error, AuthError) and key_header:
        return (
            f"FlowHunt rejected the API key sent in the {key_header} header ({error.status_code}): put your own "
            "FlowHunt API key in that header, in this server's entry of your MCP host's config."
        )
    if isinstance(error, HookNotResumedError | NotResumableError) and session_id:
        return _not_resumed(error, session_id, kind, resuming)
    text = _what_to_do(error, session_id, kind, flow_id)
    if not session_id or isinstance(error, InvalidArgumentError | NotFoundError | ConfigurationError):
        return text
    if resuming and isinstance(error, FlowHuntError):
        if may_have_arrived(error):
            return sentences(
                text,
                f"The answer may have reached FlowHunt: check with {continue_hint(session_id, resuming)}. If the "
                "turn goes on, follow it that way; if nothing comes, respond again (a hook takes one answer: at "
                "worst FlowHunt says already_received).",
            )
        return sentences(text, "FlowHunt did not take the answer, so responding again is safe.")
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


def _not_resumed(
    error: HookNotResumedError | NotResumableError, session_id: str, kind: SessionKind, resuming: str | None
) -> str:
    new_message = message_hint(session_id, kind)
    if isinstance(error, NotResumableError):
        return (
            f"This session cannot be resumed through the API (FlowHunt answered {error.status_code}): answer in "
            f"FlowHunt, or send a new message with {new_message}."
        )
    status, hook = error.status, error.hook_id
    if status == "already_received":
        follow = f" follow it with {continue_hint(session_id, resuming)}" if resuming else " follow it with poll_events"
        return (
            f"Hook {hook!r} was already answered (FlowHunt says already_received): a hook takes one answer. The turn "
            f"goes on in FlowHunt:{follow}."
        )
    if status == "expired":
        return (
            f"Hook {hook!r} has expired (FlowHunt says expired): its turn was cancelled or timed out. Send a new "
            f"message with {new_message}."
        )
    if status == "not_found":
        return (
            f"FlowHunt knows no hook {hook!r} in this session (not_found): use the hook_id of the latest result's "
            f"waiting_for, or send a new message with {new_message}."
        )
    return f"FlowHunt did not resume hook {hook!r} (it says {status}). Send a new message with {new_message}."


def _what_to_do(error: FlowMCPError, session_id: str | None, kind: SessionKind, flow_id: str | None) -> str:
    if isinstance(error, MissingKeyError):
        return MISSING_KEY_HELP  # the client's own text is for library users; this one is for MCP hosts
    if isinstance(error, InvalidArgumentError | ConfigurationError):
        return str(error)
    if isinstance(error, NotFoundError) and flow_id and not session_id:
        return (
            f"Unknown flow '{flow_id}': it does not exist in this workspace or is not published. Call list_flows "
            "to see the flows you can run."
        )
    if isinstance(error, NotFoundError):
        which = f"'{session_id}'" if session_id else ""
        start = "run_flow without session_id" if kind == "flow" else "create_session, or ask without session_id,"
        return (f"Unknown session {which}: it does not exist or has expired. Call {start} to start a new one.").replace(
            "  ", " "
        )
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
