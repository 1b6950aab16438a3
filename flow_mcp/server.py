"""build_server(): the MCP server with the four tools. Tools are thin: validate, call, shape the result."""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Annotated, Any, TypeVar

import anyio
import structlog
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import AnyHttpUrl, BaseModel, Field

from flow_mcp import __version__, render
from flow_mcp.access import Access, Caller, HttpAccess
from flow_mcp.asking import Hint, ask_turn, follow_until_drained, refuse_if_a_turn_runs
from flow_mcp.client import FlowHuntClient
from flow_mcp.config import Settings
from flow_mcp.drain import Drain
from flow_mcp.errors import FlowMCPError, InvalidArgumentError
from flow_mcp.events import is_answer, normalize, text_of
from flow_mcp.failures import describe
from flow_mcp.handles import HANDLE_PATTERN
from flow_mcp.models import AI_MODELS, AskResult, CreateSessionResult, InvokeResult, PollResult, RawEvent
from flow_mcp.poller import now_ms
from flow_mcp.resources import register_resources
from flow_mcp.sending import send_message
from flow_mcp.state import AppState
from flow_mcp.turns import Cursor, decode_cursor, status_of
from flow_mcp.validation import check_ai_model, check_message, check_seconds

log = structlog.get_logger("flow_mcp.server")

MAX_POLL_WAIT_SECONDS = 45.0
MAX_ASK_TIMEOUT_SECONDS = 600.0

INSTRUCTIONS = """\
Tools for FlowHunt's AI Flow Assistant, which builds and edits FlowHunt flows (AI agents).
Use `ask` for a whole conversation turn in one call: it returns the assistant's answer, the tools it used
and the flow edits it made. Pass the returned session_id to the next `ask` to continue the conversation.
If `ask` returns status "running", the turn continues on FlowHunt: call `poll_events` with the returned
session_id and cursor (wait_seconds=30) until the status is no longer "running".
Use `create_session` + `invoke` + `poll_events` when you want to drive each step yourself."""


ClientFactory = Callable[[Settings], FlowHuntClient]
_Tool = TypeVar("_Tool", bound=Callable[..., Any])

SessionIdArg = Annotated[
    str,
    Field(
        description="A FlowHunt session id from create_session or ask.",
        json_schema_extra={"pattern": HANDLE_PATTERN.pattern},
    ),
]
MessageArg = Annotated[
    str, Field(description="Your message to the Flow Assistant, e.g. 'Build a flow that answers FAQ from my docs'.")
]
AiModelArg = Annotated[
    str | None,
    Field(
        description="Model the assistant uses; omit for FlowHunt's default.",
        json_schema_extra={"enum": [*AI_MODELS, None]},
    ),
]
ContextFlowArg = Annotated[
    str | None, Field(description="Id of an existing FlowHunt flow for the assistant to work on, if any.")
]


def build_server(
    settings: Settings,
    *,
    client_factory: ClientFactory = FlowHuntClient,
    http: HttpAccess | None = None,
    drain: Drain | None = None,
    token_verifier: TokenVerifier | None = None,
) -> MCPServer[AppState]:
    """The flow_mcp MCP server. Nothing here touches the network: FlowHunt is first called by a tool.

    ``http`` makes it a server for many clients (session handles, optionally each client's own FlowHunt key);
    ``drain`` is how the HTTP runner tells running calls that the server is stopping; ``token_verifier``
    makes every HTTP request need a bearer token it accepts.
    """

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        async with Access(settings, client_factory, http) as access:
            yield AppState(settings=settings, access=access, drain=drain or Drain())

    mcp: MCPServer[AppState] = MCPServer(
        "flow-mcp",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level="WARNING",
        token_verifier=token_verifier,
        # Static tokens have no authorization server to advertise: no resource metadata, only the 401.
        auth=AuthSettings(issuer_url=AnyHttpUrl("http://localhost"), resource_server_url=None)
        if token_verifier
        else None,
    )

    def tool(annotations: ToolAnnotations) -> Callable[[_Tool], _Tool]:
        # The SDK passes a docstring on verbatim; hosts show it to the model, so drop the source indentation.
        def register(fn: _Tool) -> _Tool:
            return mcp.tool(description=inspect.cleandoc(fn.__doc__ or ""), annotations=annotations)(fn)

        return register

    @tool(ToolAnnotations(title="Create a Flow Assistant session", open_world_hint=True))
    async def create_session(
        ctx: Context[AppState],
        context_flow_id: ContextFlowArg = None,
        start_with_welcome_message: Annotated[
            bool, Field(description="Ask the assistant to post a welcome message first.")
        ] = False,
    ) -> Annotated[CallToolResult, CreateSessionResult]:
        """Start a new conversation with FlowHunt's Flow Assistant and return its session_id.

        Usually not needed: `ask` creates a session by itself. Use it to drive turns step by step with
        `invoke` and `poll_events`.
        """
        async with _calling(ctx, "create_session", Hint()) as caller:
            created = await caller.client.create_session(context_flow_id, start_with_welcome_message)
            result = CreateSessionResult(
                session_id=caller.public(created.session_id),
                created_at=created.created_at,
                workspace_id=await caller.client.workspace_id(),
            )
            return _result(result, render.create_session_text(result))

    @tool(ToolAnnotations(title="Send a message (returns at once)", open_world_hint=True))
    async def invoke(
        ctx: Context[AppState], session_id: SessionIdArg, message: MessageArg, ai_model: AiModelArg = None
    ) -> Annotated[CallToolResult, InvokeResult]:
        """Send a message to the assistant in a session and return at once with a cursor.

        The assistant then works in the background: call `poll_events(session_id, cursor, wait_seconds=30)`
        until its status is no longer "running". Prefer `ask`, which does all of this in one call.
        """
        state = _state(ctx)
        async with _calling(ctx, "invoke", Hint(session_id=session_id, invoking=True)) as caller:
            sid, text, model = caller.session(session_id), check_message(message), check_ai_model(ai_model)
            sent = await send_message(
                caller.client, sid, text, model, settle_ms=state.settings.settle_ms, new_session=False
            )
            result = InvokeResult(
                session_id=caller.public(sid),
                message_id=sent.message_id,
                created_at=sent.created_at,
                cursor=sent.cursor.encode(),
                events=[normalize(event) for event in sent.events],
            )
            return _result(result, render.invoke_text(result))

    @tool(ToolAnnotations(title="Fetch new events of a session", read_only_hint=True, open_world_hint=True))
    async def poll_events(
        ctx: Context[AppState],
        session_id: SessionIdArg,
        cursor: Annotated[
            str,
            Field(description="The cursor from invoke, ask or the previous poll_events (or a FlowHunt timestamp)."),
        ],
        wait_seconds: Annotated[
            float,
            Field(description="Wait up to this long (0-45 s) for new events instead of returning at once."),
        ] = 0,
    ) -> Annotated[CallToolResult, PollResult]:
        """Fetch the events of a session newer than `cursor`, each exactly once, with the turn's status.

        Pass the returned cursor to the next call. With wait_seconds > 0 it waits until at least one new event
        arrives, the turn ends, or the wait is over, so you can follow a turn without calling in a tight loop.
        """
        state = _state(ctx)
        async with _calling(ctx, "poll_events", Hint(session_id=session_id)) as caller:
            sid = caller.session(session_id)
            wait = check_seconds("wait_seconds", wait_seconds, low=0, high=MAX_POLL_WAIT_SECONDS)
            start = decode_cursor(cursor)
            collected: list[RawEvent] = []

            async def keep(events: Sequence[RawEvent], _: Cursor) -> None:
                collected.extend(events)

            end = await follow_until_drained(
                state,
                caller,
                sid,
                start,
                deadline=time.monotonic() + wait,
                until="new_events",
                on_events=keep,
                max_events=state.settings.max_events_per_poll,
            )
            progress = end.progress
            answers = [text_of(event.meta, "message") for event in collected if is_answer(event)]
            result = PollResult(
                session_id=caller.public(sid),
                events=[normalize(event) for event in collected],
                cursor=end.encode(),
                status=status_of(progress, now_ms(), state.settings.settle_ms),
                more=len(collected) >= state.settings.max_events_per_poll,
                answer=next((a for a in reversed(answers) if a), None),
                waiting_for=progress.waiting_for,
                error=progress.error,
            )
            return _result(result, render.poll_text(result))

    @tool(ToolAnnotations(title="Ask the Flow Assistant", open_world_hint=True))
    async def ask(
        ctx: Context[AppState],
        message: MessageArg,
        session_id: Annotated[
            str | None,
            Field(
                description="Continue this session (from a previous ask); omit to start a new conversation.",
                json_schema_extra={"pattern": HANDLE_PATTERN.pattern},
            ),
        ] = None,
        context_flow_id: ContextFlowArg = None,
        ai_model: AiModelArg = None,
        timeout_seconds: Annotated[
            float | None,
            Field(description="Return after this many seconds even if the turn is still running (default 50)."),
        ] = None,
    ) -> Annotated[CallToolResult, AskResult]:
        """Ask FlowHunt's Flow Assistant something and get its answer: one call for a whole turn.

        Creates a session unless `session_id` is given, sends the message, follows the assistant while it
        works (streaming progress) and returns the answer, the tools it used and the flow edits it made.
        If the turn is not done in time it returns status "running" with a cursor: then call
        `poll_events(session_id, cursor, wait_seconds=30)` until the status is no longer "running".
        """
        state = _state(ctx)
        started = time.monotonic()
        hint = Hint(session_id=session_id)
        async with _calling(ctx, "ask", hint) as caller:
            text, model = check_message(message), check_ai_model(ai_model)
            budget = (
                state.settings.ask_timeout
                if timeout_seconds is None
                else check_seconds("timeout_seconds", timeout_seconds, low=1, high=MAX_ASK_TIMEOUT_SECONDS)
            )
            if session_id is not None and context_flow_id is not None:
                raise InvalidArgumentError("context_flow_id applies to a new session only: omit session_id to use it.")
            if session_id is not None:
                sid = caller.session(session_id)
                await refuse_if_a_turn_runs(state, caller, sid)
            else:
                sid = (await caller.client.create_session(context_flow_id)).session_id
            hint.session_id = caller.public(sid)
            with state.turns.following(sid):
                result = await ask_turn(
                    state,
                    caller,
                    sid,
                    text,
                    model,
                    deadline=started + budget,
                    report=ctx.report_progress,
                    hint=hint,
                    new_session=session_id is None,
                )
            state.turns.finished(sid, None if result.status != "running" else result.cursor)
            return _result(result, render.ask_text(result))

    register_resources(mcp, _caller_of)
    return mcp


# -- helpers --------------------------------------------------------------------------------------


def _state(ctx: Context[AppState]) -> AppState:
    return ctx.request_context.lifespan_context


def _caller_of(ctx: Context[AppState]) -> AbstractAsyncContextManager[Caller]:
    """Who calls: over HTTP, the client the bearer token names, with the FlowHunt key it sent if it brings one."""
    access = _state(ctx).access
    token = get_access_token()
    key_header = access.key_header
    api_key = (ctx.headers or {}).get(key_header) if key_header else None
    return access.caller(token.client_id if token else None, api_key)


@asynccontextmanager
async def _calling(ctx: Context[AppState], tool: str, hint: Hint) -> AsyncIterator[Caller]:
    """A tool call's frame: its caller, and every failure turned into a tool error that says what to do."""
    hint.key_header = _state(ctx).access.key_header
    with _tool_errors(tool, hint):
        async with _caller_of(ctx) as caller:
            with structlog.contextvars.bound_contextvars(client=caller.name):
                yield caller


def _result(result: BaseModel, text: str) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=result.model_dump(mode="json")
    )


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
