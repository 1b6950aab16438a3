"""The tools, each thin: check the arguments, call the flowhunt layer or the turn runner, shape the result.

Tool docstrings are written for the model that calls them: what the tool does, when to use it, what to call next.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Annotated

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, InputRequiredResult, ToolAnnotations

from flow_mcp.config import Settings
from flow_mcp.errors import FlowHuntError, InvalidArgumentError, UploadFailedError, may_have_arrived
from flow_mcp.flowhunt.cursor import Cursor, decode_cursor
from flow_mcp.flowhunt.events import Event, normalize
from flow_mcp.flowhunt.flows import FlowUpload, details, find_flows
from flow_mcp.flowhunt.follow import now_ms
from flow_mcp.flowhunt.logger import get_logger
from flow_mcp.flowhunt.send import send_message
from flow_mcp.flowhunt.turn import status_of
from flow_mcp.flowhunt.wire import RawEvent
from flow_mcp.server import elicitation, paging, results
from flow_mcp.server.arguments import (
    MAX_ASK_TIMEOUT_SECONDS,
    MAX_POLL_WAIT_SECONDS,
    AiModelArg,
    AttachmentsArg,
    ContextFlowArg,
    CursorArg,
    FlowIdArg,
    FlowLimitArg,
    FlowMessageArg,
    FlowQueryArg,
    FlowSessionIdArg,
    FormDataArg,
    HookIdArg,
    MessageArg,
    OptionalSessionIdArg,
    ReplyArg,
    SessionIdArg,
    TimeoutSecondsArg,
    VariablesArg,
    WaitSecondsArg,
    WelcomeArg,
    check_ai_model,
    check_context_flow_id,
    check_flow_id,
    check_form_data,
    check_hook_id,
    check_limit,
    check_message,
    check_query,
    check_seconds,
    check_variables,
)
from flow_mcp.server.attachments import load_attachments
from flow_mcp.server.callers import SessionRef
from flow_mcp.server.frame import AppState, calling, session_named, state_of, tool_result, touched
from flow_mcp.server.results import (
    AskResult,
    CreateSessionResult,
    FlowInfo,
    InvokeResult,
    ListFlowsResult,
    PollResult,
)
from flow_mcp.server.runner import Hint
from flow_mcp.server.wholeturn import Run, one_turn, whole_turn

log = get_logger()


async def create_session(
    ctx: Context[AppState], context_flow_id: ContextFlowArg = None, start_with_welcome_message: WelcomeArg = False
) -> Annotated[CallToolResult, CreateSessionResult]:
    """Start a new conversation with FlowHunt's Flow Assistant and return its session_id.

    Usually not needed: `ask` creates a session by itself. Use it to drive turns step by step with
    `invoke` and `poll_events`.
    """
    async with calling(ctx, "create_session", Hint()) as caller:
        flow_id = check_context_flow_id(context_flow_id)
        created = await caller.client.create_session(flow_id, start_with_welcome_message)
        session = SessionRef(created.session_id)
        result = CreateSessionResult(
            session_id=caller.public(session),
            created_at=created.created_at,
            workspace_id=await caller.client.workspace_id(),
        )
        touched(ctx, caller, session)
        return tool_result(ctx, result, results.create_session_text)


async def invoke(
    ctx: Context[AppState], session_id: SessionIdArg, message: MessageArg, ai_model: AiModelArg = None
) -> Annotated[CallToolResult, InvokeResult]:
    """Send a message to the assistant in a session and return at once with a cursor.

    The assistant then works in the background: call `poll_events(session_id, cursor, wait_seconds=30)`
    until its status is no longer "running". Prefer `ask`, which does all of this in one call.
    """
    settings = state_of(ctx).settings
    hint = Hint(session_id=session_id, invoking=True)
    async with calling(ctx, "invoke", hint) as caller:
        session = session_named(caller, session_id, hint)
        text, model = check_message(message), check_ai_model(ai_model)
        sent = await send_message(
            caller.client, session.id, text, model, settle_ms=settings.settle_ms, new_session=False, kind=session.kind
        )
        result = InvokeResult(
            session_id=caller.public(session),
            message_id=sent.message_id,
            created_at=sent.created_at,
            cursor=sent.cursor.encode(),
            events=[normalize(event) for event in sent.events],
        )
        touched(ctx, caller, session)
        return tool_result(ctx, result, results.invoke_text)


async def poll_events(
    ctx: Context[AppState], session_id: SessionIdArg, cursor: CursorArg, wait_seconds: WaitSecondsArg = 0
) -> Annotated[CallToolResult, PollResult]:
    """Fetch the events of a session newer than `cursor`, each exactly once, with the turn's status.

    Works for every session: the assistant's (ask, invoke) and a published flow's (run_flow). Pass the returned
    cursor to the next call. With wait_seconds > 0 it waits until at least one new event arrives, the turn ends,
    or the wait is over, so you can follow a turn without calling in a tight loop.
    """
    state = state_of(ctx)
    hint = Hint(session_id=session_id)
    async with calling(ctx, "poll_events", hint) as caller:
        session = session_named(caller, session_id, hint)
        wait = check_seconds("wait_seconds", wait_seconds, low=0, high=MAX_POLL_WAIT_SECONDS)
        start = decode_cursor(cursor)
        batches: Batches = []

        async def keep(events: Sequence[RawEvent], after: Cursor) -> None:
            batches.append((events, after))

        limit = state.settings.max_events_per_poll
        end = await state.runner.follow(
            caller,
            session,
            start,
            deadline=time.monotonic() + wait,
            until="new_events",
            on_events=keep,
            max_events=limit,
        )
        delivered = [normalize(event) for events, _ in batches for event in events]
        # A result has a size limit as well as a count limit: a page that fills it ends where the next one begins.
        shown, cut = paging.page(delivered, state.settings.max_result_bytes - paging.RESERVED_BYTES)
        if cut:
            # The page ends early; the schedule's pace stays where the polls left it.
            end = _cursor_after(start, batches, len(shown), state.settings.settle_ms).with_pace(end.pace)
        more = cut or len(delivered) >= limit
        result = _poll_result(caller.public(session), shown, end, more=more, settings=state.settings)
        touched(ctx, caller, session)
        return tool_result(ctx, result, functools.partial(results.poll_text, kind=session.kind))


async def ask(
    ctx: Context[AppState],
    message: MessageArg,
    session_id: OptionalSessionIdArg = None,
    context_flow_id: ContextFlowArg = None,
    ai_model: AiModelArg = None,
    timeout_seconds: TimeoutSecondsArg = None,
) -> Annotated[CallToolResult, AskResult] | InputRequiredResult:
    """Ask FlowHunt's Flow Assistant something and get its answer: one call for a whole turn.

    Creates a session unless `session_id` is given, sends the message, follows the assistant while it
    works (streaming progress) and returns the answer, the tools it used and the flow edits it made.
    If the assistant stops to ask the user something or to have a tool run approved, the user is asked
    through the host when it supports that, and the turn goes on; otherwise the status is "waiting_for_input".
    If the turn is not done in time it returns status "running" with a cursor: then call
    `poll_events(session_id, cursor, wait_seconds=30)` until the status is no longer "running".
    If it returns "waiting_for_input" with a hook_id, answer with `respond`.
    """
    state = state_of(ctx)
    started = time.monotonic()
    hint = Hint(session_id=session_id)
    async with calling(ctx, "ask", hint) as caller:
        text, model = check_message(message), check_ai_model(ai_model)
        deadline = started + _budget(state, timeout_seconds)
        if session_id is not None and context_flow_id is not None:
            raise InvalidArgumentError("context_flow_id applies to a new session only: omit session_id to use it.")

        async def begin(asker: elicitation.Asker) -> tuple[SessionRef, Run]:
            if session_id is not None:
                session = session_named(caller, session_id, hint)
                if session.kind == "flow":
                    raise InvalidArgumentError(
                        "session_id is a published flow's session: continue it with run_flow(flow_id=..., "
                        "message=..., session_id=...), or omit session_id to ask the Flow Assistant."
                    )
            else:
                flow_id = check_context_flow_id(context_flow_id)
                session = SessionRef((await caller.client.create_session(flow_id, deadline=deadline)).session_id)
            run = partial(
                state.runner.ask,
                caller,
                session,
                text,
                model,
                deadline=deadline,
                report=ctx.report_progress,
                hint=hint,
                new_session=session_id is None,
                answer=asker,
            )
            return session, run

        return await whole_turn(
            ctx, caller, hint, begin, deadline=deadline, continuing=session_id is not None, text_of=results.ask_text
        )


async def list_flows(
    ctx: Context[AppState], query: FlowQueryArg = None, limit: FlowLimitArg = 50
) -> Annotated[CallToolResult, ListFlowsResult]:
    """List the published flows (AI agents) of the FlowHunt workspace that you can run with `run_flow`.

    Filter with `query` (a part of the name or description, any case). Each flow comes with its flow_id, what it
    does and, when it says, what input it expects. Then call `run_flow(flow_id, message)`.
    """
    state = state_of(ctx)
    async with calling(ctx, "list_flows", Hint()) as caller:
        wanted, most = check_query(query), check_limit(limit)
        deadline = time.monotonic() + state.settings.ask_timeout
        found, more = await find_flows(caller.client, wanted, most, deadline=deadline)
        detail = await details(caller.client, found, deadline=deadline)
        tool_names = state.flow_tools.names(ctx.headers) if state.flow_tools else {}
        flows = [
            FlowInfo(
                flow_id=flow.id,
                name=flow.name,
                description=flow.description,
                input_hint=detail[flow.id].try_flow_input_placeholder if flow.id in detail else None,
                tool_name=tool_names.get(flow.id),
            )
            for flow in found
        ]
        return tool_result(ctx, ListFlowsResult(flows=flows, more=more), results.list_flows_text)


async def run_flow(
    ctx: Context[AppState],
    flow_id: FlowIdArg,
    message: FlowMessageArg,
    variables: VariablesArg = None,
    session_id: FlowSessionIdArg = None,
    timeout_seconds: TimeoutSecondsArg = None,
    attachments: AttachmentsArg = None,
) -> Annotated[CallToolResult, AskResult] | InputRequiredResult:
    """Run a published FlowHunt flow (an AI agent) on a message and get its answer: one call for a whole turn.

    Find flows with `list_flows`. Without `session_id` it opens a new session of the flow (with `variables`);
    with the session_id of an earlier run_flow it continues that conversation. `attachments` are files the flow
    reads. The result is like `ask`'s: if the flow asks the user something, the user is asked through the host
    when it supports that; if the status is "running", follow with `poll_events(session_id, cursor,
    wait_seconds=30)`; if "waiting_for_input" with a hook_id, answer with `respond`.
    """
    state = state_of(ctx)
    started = time.monotonic()
    hint = Hint(session_id=session_id, kind="flow", flow_id=flow_id)
    async with calling(ctx, "run_flow", hint) as caller:
        flow, text = check_flow_id(flow_id), check_message(message)
        deadline = started + _budget(state, timeout_seconds)
        values = check_variables(variables)
        if session_id is not None and values:
            raise InvalidArgumentError("variables apply to a new session only: omit session_id to use them.")

        async def begin(asker: elicitation.Asker) -> tuple[SessionRef, Run]:
            uploads = await load_attachments(
                attachments, local=caller.local, max_bytes=state.settings.max_attachment_bytes
            )
            if session_id is not None:
                session = session_named(caller, session_id, hint)
                if session.kind != "flow":
                    raise InvalidArgumentError(
                        "session_id is a Flow Assistant session: continue it with ask, or omit session_id to start "
                        "a session of the flow."
                    )
            else:
                created = await caller.client.create_flow_session(flow, values, deadline=deadline)
                session = SessionRef(created.session_id, "flow")

            async def run() -> AskResult:
                for done, upload in enumerate(uploads):
                    try:
                        await caller.client.upload_attachment(
                            session.id, upload.name, upload.content, upload.content_type, deadline=deadline
                        )
                    except FlowHuntError as error:
                        raise _upload_failed(error, caller.public(session), upload.name, uploads[:done]) from None
                return await state.runner.ask(
                    caller,
                    session,
                    text,
                    None,
                    deadline=deadline,
                    report=ctx.report_progress,
                    hint=hint,
                    new_session=session_id is None,
                    answer=asker,
                )

            return session, run

        text_of = partial(results.ask_text, kind="flow", flow_id=flow)
        return await whole_turn(
            ctx, caller, hint, begin, deadline=deadline, continuing=session_id is not None, text_of=text_of
        )


async def respond(
    ctx: Context[AppState],
    session_id: SessionIdArg,
    hook_id: HookIdArg,
    message: ReplyArg,
    form_data: FormDataArg = None,
    timeout_seconds: TimeoutSecondsArg = None,
) -> Annotated[CallToolResult, AskResult]:
    """Answer a turn that is waiting for input (status "waiting_for_input" with a hook_id), then follow it on.

    Pass the session_id and waiting_for.hook_id of the waiting result and your answer as `message`; for an
    approval, "approve" or "reject: <reason>". A hook takes one answer. The result is like `ask`'s: the turn's
    answer, or "running" with a cursor for `poll_events`.
    """
    state = state_of(ctx)
    started = time.monotonic()
    hint = Hint(session_id=session_id)
    async with calling(ctx, "respond", hint) as caller:
        session = session_named(caller, session_id, hint)
        hook, text, form = check_hook_id(hook_id), check_message(message), check_form_data(form_data)
        deadline = started + _budget(state, timeout_seconds)
        touched(ctx, caller, session)
        run = partial(
            state.runner.respond,
            caller,
            session,
            hook,
            text,
            form,
            deadline=deadline,
            report=ctx.report_progress,
            hint=hint,
        )
        result = await one_turn(state, caller, session, hint, run, continuing=True)
        return tool_result(ctx, result, partial(results.ask_text, kind=session.kind))


TOOLS: dict[Callable[..., Awaitable[CallToolResult | InputRequiredResult]], ToolAnnotations] = {
    create_session: ToolAnnotations(title="Create a Flow Assistant session", open_world_hint=True),
    invoke: ToolAnnotations(title="Send a message (returns at once)", open_world_hint=True),
    poll_events: ToolAnnotations(title="Fetch new events of a session", read_only_hint=True, open_world_hint=True),
    ask: ToolAnnotations(title="Ask the Flow Assistant", open_world_hint=True),
    list_flows: ToolAnnotations(title="List published flows", read_only_hint=True, open_world_hint=True),
    run_flow: ToolAnnotations(title="Run a published flow", open_world_hint=True),
    respond: ToolAnnotations(title="Answer a waiting turn", open_world_hint=True),
}
"""Every tool, in the order hosts list them, with its annotations."""


# -- helpers --------------------------------------------------------------------------------------


def _poll_result(public_id: str, events: list[Event], end: Cursor, *, more: bool, settings: Settings) -> PollResult:
    progress = end.progress
    answers = [event.text for event in events if paging.is_answer_event(event)]
    return PollResult(
        session_id=public_id,
        events=events,
        cursor=end.encode(),
        status=status_of(progress, end.quiet_until(now_ms()), settings.settle_ms),
        more=more,
        answer=next((a for a in reversed(answers) if a), None),
        waiting_for=progress.waiting_for,
        error=progress.error,
    )


Batches = list[tuple[Sequence[RawEvent], Cursor]]


def _cursor_after(start: Cursor, batches: Batches, count: int, settle_ms: int) -> Cursor:
    """The cursor right after the first ``count`` delivered events: whole batches, then part of the next."""
    cursor = start
    for events, after in batches:
        if count < len(events):
            return cursor.advanced(events, count, now_ms(), settle_ms).cursor
        count -= len(events)
        cursor = after
    return cursor


def _budget(state: AppState, timeout_seconds: float | None) -> float:
    """Seconds a whole-turn tool follows its turn: ``timeout_seconds`` or FLOW_MCP_ASK_TIMEOUT."""
    if timeout_seconds is None:
        return state.settings.ask_timeout
    return check_seconds("timeout_seconds", timeout_seconds, low=1, high=MAX_ASK_TIMEOUT_SECONDS)


def _upload_failed(error: FlowHuntError, session_id: str, name: str, attached: Sequence[FlowUpload]) -> FlowHuntError:
    """What a caller needs after a failed upload: which session holds what, and whether the file may be there."""
    already = f" {', '.join(repr(u.name) for u in attached)} attached before it." if attached else ""
    maybe = (
        f" FlowHunt may have taken {name!r} all the same (it can fail after taking a file): do not attach it again."
        if may_have_arrived(error)
        else f" FlowHunt did not take {name!r}."
    )
    return UploadFailedError(
        f"Attaching {name!r} to flow session {session_id} failed: {error}.{already}{maybe} The message was not sent: "
        f'go on in that session with run_flow(flow_id=..., message=..., session_id="{session_id}", attachments=...).'
    )
