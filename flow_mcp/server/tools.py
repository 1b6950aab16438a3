"""The tools, each thin: check the arguments, call the flowhunt layer or the turn runner, shape the result.

Tool docstrings are written for the model that calls them: what the tool does, when to use it, what to call next.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, TypeVar

import anyio
import structlog
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, InputRequiredResult, TextContent, ToolAnnotations
from pydantic import BaseModel

from flow_mcp.config import Settings
from flow_mcp.errors import FlowHuntError, FlowMCPError, InvalidArgumentError, UploadFailedError, may_have_arrived
from flow_mcp.flowhunt.cursor import Cursor, decode_cursor
from flow_mcp.flowhunt.events import Event, normalize
from flow_mcp.flowhunt.flows import FlowUpload, details, find_flows
from flow_mcp.flowhunt.follow import now_ms
from flow_mcp.flowhunt.logger import get_logger
from flow_mcp.flowhunt.ratelimit import rate_lane
from flow_mcp.flowhunt.send import send_message
from flow_mcp.flowhunt.turn import status_of
from flow_mcp.flowhunt.wire import RawEvent
from flow_mcp.server import elicitation, results, tracing
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
    load_attachments,
)
from flow_mcp.server.bookkeeping import CallsInFlight, RecentSessions
from flow_mcp.server.callers import Access, Caller, SessionRef
from flow_mcp.server.flowtools import FlowTools
from flow_mcp.server.results import (
    ANSWER_UNUSABLE,
    AskResult,
    CreateSessionResult,
    FlowInfo,
    InvokeResult,
    ListFlowsResult,
    PollResult,
    describe,
)
from flow_mcp.server.runner import Hint, TurnRunner

log = get_logger()

Model = TypeVar("Model", bound=BaseModel)


@dataclass
class AppState:
    """What the server holds for its lifetime, shared by every tool call."""

    settings: Settings
    access: Access
    runner: TurnRunner
    sessions: RecentSessions = field(default_factory=lambda: RecentSessions())
    calls: CallsInFlight = field(default_factory=lambda: CallsInFlight())
    flow_tools: FlowTools | None = None  # FLOW_MCP_FLOW_TOOLS: flows as tools of their own


async def create_session(
    ctx: Context[AppState], context_flow_id: ContextFlowArg = None, start_with_welcome_message: WelcomeArg = False
) -> Annotated[CallToolResult, CreateSessionResult]:
    """Start a new conversation with FlowHunt's Flow Assistant and return its session_id.

    Usually not needed: `ask` creates a session by itself. Use it to drive turns step by step with
    `invoke` and `poll_events`.
    """
    async with _calling(ctx, "create_session", Hint()) as caller:
        flow_id = check_context_flow_id(context_flow_id)
        created = await caller.client.create_session(flow_id, start_with_welcome_message)
        session = SessionRef(created.session_id)
        result = CreateSessionResult(
            session_id=caller.public(session),
            created_at=created.created_at,
            workspace_id=await caller.client.workspace_id(),
        )
        _touched(ctx, caller, session)
        return _result(ctx, result, results.create_session_text)


async def invoke(
    ctx: Context[AppState], session_id: SessionIdArg, message: MessageArg, ai_model: AiModelArg = None
) -> Annotated[CallToolResult, InvokeResult]:
    """Send a message to the assistant in a session and return at once with a cursor.

    The assistant then works in the background: call `poll_events(session_id, cursor, wait_seconds=30)`
    until its status is no longer "running". Prefer `ask`, which does all of this in one call.
    """
    settings = _state(ctx).settings
    hint = Hint(session_id=session_id, invoking=True)
    async with _calling(ctx, "invoke", hint) as caller:
        session = _session(caller, session_id, hint)
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
        _touched(ctx, caller, session)
        return _result(ctx, result, results.invoke_text)


async def poll_events(
    ctx: Context[AppState], session_id: SessionIdArg, cursor: CursorArg, wait_seconds: WaitSecondsArg = 0
) -> Annotated[CallToolResult, PollResult]:
    """Fetch the events of a session newer than `cursor`, each exactly once, with the turn's status.

    Works for every session: the assistant's (ask, invoke) and a published flow's (run_flow). Pass the returned
    cursor to the next call. With wait_seconds > 0 it waits until at least one new event arrives, the turn ends,
    or the wait is over, so you can follow a turn without calling in a tight loop.
    """
    state = _state(ctx)
    hint = Hint(session_id=session_id)
    async with _calling(ctx, "poll_events", hint) as caller:
        session = _session(caller, session_id, hint)
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
        shown, cut = results.page(delivered, state.settings.max_result_bytes - results.RESERVED_BYTES)
        if cut:
            # The page ends early; the schedule's pace stays where the polls left it.
            end = _cursor_after(start, batches, len(shown), state.settings.settle_ms).with_pace(end.pace)
        more = cut or len(delivered) >= limit
        result = _poll_result(caller.public(session), shown, end, more=more, settings=state.settings)
        _touched(ctx, caller, session)
        return _result(ctx, result, functools.partial(results.poll_text, kind=session.kind))


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
    state = _state(ctx)
    started = time.monotonic()
    hint = Hint(session_id=session_id)
    async with _calling(ctx, "ask", hint) as caller:
        text, model = check_message(message), check_ai_model(ai_model)
        deadline = started + _budget(state, timeout_seconds)
        if session_id is not None and context_flow_id is not None:
            raise InvalidArgumentError("context_flow_id applies to a new session only: omit session_id to use it.")

        async def begin(asker: elicitation.Asker) -> tuple[SessionRef, Run]:
            if session_id is not None:
                session = _session(caller, session_id, hint)
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

        return await _whole_turn(
            ctx, caller, hint, begin, deadline=deadline, continuing=session_id is not None, text_of=results.ask_text
        )


async def list_flows(
    ctx: Context[AppState], query: FlowQueryArg = None, limit: FlowLimitArg = 50
) -> Annotated[CallToolResult, ListFlowsResult]:
    """List the published flows (AI agents) of the FlowHunt workspace that you can run with `run_flow`.

    Filter with `query` (a part of the name or description, any case). Each flow comes with its flow_id, what it
    does and, when it says, what input it expects. Then call `run_flow(flow_id, message)`.
    """
    state = _state(ctx)
    async with _calling(ctx, "list_flows", Hint()) as caller:
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
        return _result(ctx, ListFlowsResult(flows=flows, more=more), results.list_flows_text)


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
    state = _state(ctx)
    started = time.monotonic()
    hint = Hint(session_id=session_id, kind="flow", flow_id=flow_id)
    async with _calling(ctx, "run_flow", hint) as caller:
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
                session = _session(caller, session_id, hint)
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
        return await _whole_turn(
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
    state = _state(ctx)
    started = time.monotonic()
    hint = Hint(session_id=session_id)
    async with _calling(ctx, "respond", hint) as caller:
        session = _session(caller, session_id, hint)
        hook, text, form = check_hook_id(hook_id), check_message(message), check_form_data(form_data)
        deadline = started + _budget(state, timeout_seconds)
        _touched(ctx, caller, session)
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
        result = await _one_turn(state, caller, session, hint, run, continuing=True)
        return _result(ctx, result, partial(results.ask_text, kind=session.kind))


Run = Callable[[], Awaitable[AskResult]]


async def _whole_turn(
    ctx: Context[AppState],
    caller: Caller,
    hint: Hint,
    begin: Callable[[elicitation.Asker], Awaitable[tuple[SessionRef, Run]]],
    *,
    deadline: float,
    continuing: bool,
    text_of: Callable[[AskResult], str],
) -> CallToolResult | InputRequiredResult:
    """A whole turn for ask and run_flow: ``begin`` (given who answers questions) names the session and the run.

    A 2026-07-28 client calls again, with the same arguments, to bring the user's answer to the question the last
    call returned: then the message was sent already, and the turn goes on from where it stopped.
    """
    state = _state(ctx)
    carried = elicitation.carried(ctx)
    asker = elicitation.Asker(ctx, state.settings, asked=carried.asked if carried else 0)
    if carried is not None:
        so_far = AskResult.model_validate(carried.so_far)
        session = _session(caller, so_far.session_id, hint)
        if carried.reply is None:  # no usable answer: the turn still waits, as reported
            so_far = so_far.model_copy(update={"note": ANSWER_UNUSABLE}) if carried.unusable else so_far
            return _result(ctx, so_far, text_of)
        run: Run = partial(
            state.runner.resume,
            caller,
            session,
            so_far,
            (carried.question, carried.reply),
            deadline=deadline,
            report=ctx.report_progress,
            hint=hint,
            answer=asker,
        )
    else:
        session, run = await begin(asker)
    hint.session_id = caller.public(session)
    _touched(ctx, caller, session)
    result = await _one_turn(state, caller, session, hint, run, continuing=continuing or carried is not None)
    if asker.deferred is not None and result.status == "waiting_for_input":
        return asker.input_required(result)  # the client asks its user, then calls again with the answer
    if asker.note and result.status == "waiting_for_input" and result.note is None:
        result = result.model_copy(update={"note": asker.note})
    return _result(ctx, result, text_of)


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
    answers = [event.text for event in events if results.is_answer_event(event)]
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


async def _one_turn(
    state: AppState, caller: Caller, session: SessionRef, hint: Hint, run: Run, *, continuing: bool
) -> AskResult:
    """``run`` as the session's one turn, recording how it left the turn (running: with its cursor)."""
    position = lambda: hint.cursor  # noqa: E731 -- read when a call refused meanwhile asks where the turn is
    async with state.runner.one_turn(caller, session, continuing=continuing, position=position) as record:
        with tracing.turn_span(hint.session_id, session.kind) as finished:
            try:
                result = await run()
            except anyio.get_cancelled_exc_class():
                # Cancelled, or the client went away: the turn goes on at FlowHunt, so the next call checks it first.
                record(hint.cursor)
                raise
            finished(result)
        record(result.cursor if result.status == "running" else None)
    return result


def _session(caller: Caller, given: str, hint: Hint) -> SessionRef:
    """The session the caller named; its kind goes into the hint, so that error texts name the right tools."""
    session = caller.session(given)
    hint.kind = session.kind
    return session


def _budget(state: AppState, timeout_seconds: float | None) -> float:
    """Seconds a whole-turn tool follows its turn: ``timeout_seconds`` or FLOW_MCP_ASK_TIMEOUT."""
    if timeout_seconds is None:
        return state.settings.ask_timeout
    return check_seconds("timeout_seconds", timeout_seconds, low=1, high=MAX_ASK_TIMEOUT_SECONDS)


def _touched(ctx: Context[AppState], caller: Caller, session: SessionRef) -> None:
    _state(ctx).sessions.touch(owner_of(caller), session)


def owner_of(caller: Caller) -> str:
    """Who owns the sessions a caller touches: over HTTP one per client (and FlowHunt key), the one user on stdio.

    A session handle is bound to exactly that identity, so the handle of a fixed name stands for it.
    """
    return caller.public(SessionRef("sessions"))


def _state(ctx: Context[AppState]) -> AppState:
    return ctx.request_context.lifespan_context


def caller_of(ctx: Context[AppState]) -> AbstractAsyncContextManager[Caller]:
    """Who calls: over HTTP, the client the bearer token names, with the FlowHunt key it sent if it brings one."""
    return caller_for(_state(ctx).access, ctx.headers)


def caller_for(access: Access, headers: Mapping[str, str] | None) -> AbstractAsyncContextManager[Caller]:
    """The Caller of a request with these HTTP headers (None on stdio), as ``caller_of``."""
    token = get_access_token()
    key_header = access.key_header
    api_key = (headers or {}).get(key_header) if key_header else None
    return access.caller(token.client_id if token else None, api_key)


@asynccontextmanager
async def _calling(ctx: Context[AppState], tool: str, hint: Hint) -> AsyncIterator[Caller]:
    """A tool call's frame: its caller, and every failure turned into a tool error that says what to do."""
    hint.key_header = _state(ctx).access.key_header
    with _tool_errors(tool, hint), tracing.tool_span(tool, ctx.request_context.meta, lambda: hint.session_id):
        async with caller_of(ctx) as caller:
            # The caller's name is also its lane in the key's request budget, so callers share it fairly.
            with structlog.contextvars.bound_contextvars(client=caller.name), rate_lane(caller.name):
                yield caller


def _result(ctx: Context[AppState], result: Model, text_of: Callable[[Model], str]) -> CallToolResult:
    """The tool result: ``text_of(result)`` and the structured content, within the size limit of a result."""
    limit = _state(ctx).settings.max_result_bytes
    data, text = result.model_dump(mode="json"), text_of(result)
    if results.json_size(data) + results.json_size(text) > limit:
        # A safety net: the parts are bounded already (tool outputs, events per page); here long strings give way.
        log.warning("result_cut", size=results.json_size(data) + results.json_size(text), limit=limit)
        result = type(result).model_validate(results.fit(data, limit // 2))
        data, text = result.model_dump(mode="json"), results.fit(text_of(result), limit // 2)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


@contextmanager
def _tool_errors(tool: str, hint: Hint) -> Iterator[None]:
    """Turn every failure into a tool error whose text says what to do; never a traceback or a secret."""
    try:
        yield
    except BaseException as raised:
        error = _leaf(raised)
        if not isinstance(error, Exception):
            raise  # cancellation and interpreter exits pass through untouched
        if isinstance(error, FlowMCPError):
            log.info("tool_failed", tool=tool, error_type=type(error).__name__)
            text = describe(
                error,
                session_id=hint.session_id,
                cursor=hint.cursor,
                invoking=hint.invoking,
                key_header=hint.key_header,
                kind=hint.kind,
                flow_id=hint.flow_id,
                resuming=hint.resuming,
            )
            raise ToolError(text) from None
        log.error("tool_crashed", tool=tool, error_type=type(error).__name__, exc_info=error)
        raise ToolError(
            f"flow_mcp hit an internal error in {tool} ({type(error).__name__}); the server keeps running and the "
            "details are in its log. Retry, or report it with that log."
        ) from None


def _leaf(error: BaseException) -> BaseException:
    # A task group wraps a failure in an exception group; the first real failure is what matters.
    while isinstance(error, BaseExceptionGroup):
        error = next(
            (e for e in error.exceptions if not isinstance(e, anyio.get_cancelled_exc_class())), error.exceptions[0]
        )
    return error


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
