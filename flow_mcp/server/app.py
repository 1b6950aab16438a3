"""build_server(): the MCP server, its lifespan, and the registration of its tools, resources and prompt.

Around the SDK's handling of each message sits a middleware chain for what outside clients need: a cancellation
or a dropped connection stops the work on every transport, bad arguments get texts that say what to send, and
resources/list shows the caller's sessions. On stdio, a line the SDK cannot read gets a JSON-RPC error.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from types import TracebackType
from typing import Any, cast

import anyio
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http import REQUEST_CANCELLED
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp_types import INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import AnyHttpUrl
from pydantic import ValidationError as PydanticValidationError
from starlette.requests import Request

from flow_mcp._version import __version__
from flow_mcp.config import Settings
from flow_mcp.errors import FlowMCPError
from flow_mcp.flowhunt.client import FlowHuntClient
from flow_mcp.flowhunt.logger import get_logger
from flow_mcp.replicas import Coordination, InProcess
from flow_mcp.server.arguments import argument_errors
from flow_mcp.server.bookkeeping import CallKey, CallsInFlight, Drain, call_digest
from flow_mcp.server.callers import Access, HttpAccess
from flow_mcp.server.elicitation import state_security
from flow_mcp.server.flowtools import flow_tools_middleware, running_flow_tools
from flow_mcp.server.frame import AppState, caller_for, caller_of, owner_of
from flow_mcp.server.resources import register_resources, session_resources
from flow_mcp.server.runner import TurnRunner
from flow_mcp.server.stdout import claimed_stdout
from flow_mcp.server.tools import TOOLS

log = get_logger()

INSTRUCTIONS = """\
Tools for FlowHunt: its AI Flow Assistant, which builds and edits FlowHunt flows (AI agents), and the published
flows themselves.
Use `ask` for a whole conversation turn with the assistant in one call: it returns the assistant's answer, the tools
it used and the flow edits it made. Pass the returned session_id to the next `ask` to continue the conversation.
To run a published flow, find it with `list_flows` and call `run_flow(flow_id, message)`; continue with its
session_id. If a turn returns status "running", it continues on FlowHunt: call `poll_events` with the returned
session_id and cursor (wait_seconds=30) until the status is no longer "running".
If it returns "waiting_for_input" with a hook_id, answer with `respond(session_id, hook_id, message)`; without a
hook_id a person must act in FlowHunt (the link says where), then send a new message.
Use `create_session` + `invoke` + `poll_events` when you want to drive each step yourself."""


ClientFactory = Callable[[Settings], FlowHuntClient]
RequestContext = ServerRequestContext[AppState, Any]


def build_server(
    settings: Settings,
    *,
    client_factory: ClientFactory = FlowHuntClient,
    http: HttpAccess | None = None,
    drain: Drain | None = None,
    token_verifier: TokenVerifier | None = None,
    shared: Coordination | None = None,
) -> MCPServer[AppState]:
    """The flow_mcp MCP server. Nothing here touches the network: FlowHunt is first called by a tool.

    ``http`` makes it a server for many clients (session handles, optionally each client's own FlowHunt key);
    ``drain`` is how the HTTP runner tells running calls that the server is stopping; ``token_verifier``
    makes every HTTP request need a bearer token it accepts; ``shared`` is what replicas share (their request
    budget, session holds and cancellations; flow_mcp.replicas), by default nothing: all of it in this process.
    """

    bus = InMemorySubscriptionBus()  # subscriptions/listen streams (2026-07-28), told when the flow tools change

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        async with (
            shared or InProcess() as coordination,
            Access(settings, client_factory, http, coordination) as access,
            running_flow_tools(settings, access, bus) as flow_tools,
        ):
            runner = TurnRunner(settings, drain or Drain(), coordination)
            calls = CallsInFlight()
            coordination.on_cancel(partial(_cancelled_elsewhere, calls))
            yield AppState(settings=settings, access=access, runner=runner, calls=calls, flow_tools=flow_tools)

    mcp = _FlowServer(
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
        subscriptions=bus,
        # Flow tools before argument texts: a flow tool's call reaches the rest as the run_flow call it stands for.
        middleware=[_stop_when_cancelled, flow_tools_middleware, _argument_texts, _with_session_resources],
        request_state_security=state_security(settings, http),
    )
    for tool, hints in TOOLS.items():
        # The SDK passes a docstring on verbatim; hosts show it to the model, so drop the source indentation.
        mcp.tool(title=hints.title, description=inspect.cleandoc(tool.__doc__ or ""), annotations=hints)(tool)
    register_resources(mcp, caller_of, settings)
    mcp.middleware.append(_prompt_checks(mcp))
    return mcp


class _FlowServer(MCPServer[AppState]):
    """The SDK's server, whose stdio loop answers every line it cannot read (the SDK drops them unanswered) and writes
    to a pipe without a thread per message (server/stdout.py)."""

    async def run_stdio_async(self) -> None:
        # stdout straight to the pipe where it is one (server/stdout.py); else the SDK's own writer (None).
        with claimed_stdout() as stdout:
            await self._serve_stdio(cast("anyio.AsyncFile[str] | None", stdout))

    async def _serve_stdio(self, stdout: anyio.AsyncFile[str] | None) -> None:
        server = self._lowlevel_server
        async with stdio_server(stdout=stdout) as (read_stream, write_stream):
            answering = _AnsweringUnreadable(read_stream, write_stream)
            await server.run(answering, write_stream, server.create_initialization_options())


# -- cancellation ---------------------------------------------------------------------------------------------

_LONG_METHODS = frozenset({"tools/call", "resources/read"})  # the requests that wait on FlowHunt


async def _stop_when_cancelled(ctx: RequestContext, call_next: CallNext) -> HandlerResult:
    """Stop a request when its client cancels it or goes away, wherever the cancellation arrives.

    The SDK cancels a request on its own connection only; a stateless HTTP server gives each POST a connection
    of its own, and a stateful one keeps a call running after its client dropped the connection.
    """
    calls = ctx.lifespan_context.calls
    if ctx.request_id is None:
        if ctx.method == "notifications/cancelled" and isinstance(ctx.params, Mapping):
            request_id = ctx.params.get("requestId")
            if request_id is not None:
                key = _call_key(ctx, request_id)
                if calls.cancel(key):
                    log.info("request_cancelled", request_id=str(request_id))
                else:  # not running here: passed on to the other replicas, where they share Redis
                    log.info("request_cancel_not_running_here", request_id=str(request_id))
                    # Shielded (and bounded by FLOW_MCP_REDIS_TIMEOUT): a stateless server ends a notification's
                    # request as soon as it is answered, which would otherwise cut the message off on its way.
                    with anyio.CancelScope(shield=True):
                        await ctx.lifespan_context.runner.shared.cancel(call_digest(key))
        return await call_next(ctx)
    if ctx.method not in _LONG_METHODS:
        return await call_next(ctx)
    failure: Exception | None = None
    with calls.running(_call_key(ctx, ctx.request_id)) as scope:
        async with anyio.create_task_group() as watch:
            if isinstance(ctx.request, Request):
                watch.start_soon(_cancel_when_gone, ctx.request, scope)
            try:
                result = await call_next(ctx)
            except Exception as error:  # raised out of the task group, it would come wrapped in a group
                failure = error
            watch.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if scope.cancelled_caught:
        # Nobody waits for this answer any more; it only closes the request's stream, as the SDK's own does.
        raise MCPError(code=REQUEST_CANCELLED, message="Request cancelled")
    return result


def _cancelled_elsewhere(calls: CallsInFlight, digest: str) -> None:
    """A cancellation another replica was sent: the call stops if it runs here."""
    if calls.cancel_digest(digest):
        log.info("request_cancelled", via="redis")


def _call_key(ctx: RequestContext, request_id: object) -> CallKey:
    """Who sent a request, as far as the server can tell, and its id: only its sender can cancel it."""
    headers = ctx.request.headers if isinstance(ctx.request, Request) else {}
    token = get_access_token()
    key_header = ctx.lifespan_context.access.key_header
    api_key = headers.get(key_header) if key_header else None
    return (
        token.client_id if token else None,
        hashlib.sha256(api_key.encode()).hexdigest() if api_key else None,
        headers.get("mcp-session-id"),
        str(request_id),
    )


async def _cancel_when_gone(request: Request, scope: anyio.CancelScope) -> None:
    # After a disconnect, every receive() says so (ASGI); until then it waits. The SDK reads the body first.
    while (await request.receive())["type"] != "http.disconnect":
        pass
    log.info("client_gone", path=request.url.path)
    scope.cancel()


# -- argument texts, prompts, resources -----------------------------------------------------------------------

_TOOLS_BY_NAME = {tool.__name__: tool for tool in TOOLS}


async def _argument_texts(ctx: RequestContext, call_next: CallNext) -> HandlerResult:
    """A tool call whose arguments have the wrong type gets a text naming each and saying what to send."""
    result = await call_next(ctx)
    params = ctx.params if isinstance(ctx.params, Mapping) else {}
    tool = _TOOLS_BY_NAME.get(str(params.get("name"))) if ctx.method == "tools/call" else None
    arguments = params.get("arguments") or {}
    if tool is None or not isinstance(result, dict) or not result.get("isError") or not isinstance(arguments, dict):
        return result
    # The SDK refused the arguments before calling the tool (its text is a pydantic dump): say it plainly.
    errors = argument_errors(tool, arguments)
    if errors:
        log.info("tool_arguments_refused", tool=tool.__name__, count=len(errors))
        result = {**result, "content": [{"type": "text", "text": " ".join(errors)}]}
    return result


def _prompt_checks(mcp: MCPServer[AppState]) -> ServerMiddleware[Any]:
    """prompts/get with an unknown prompt or a wrong argument: an invalid-params error that says what is wrong."""

    async def check(ctx: RequestContext, call_next: CallNext) -> HandlerResult:
        if ctx.method != "prompts/get":
            return await call_next(ctx)
        params = ctx.params if isinstance(ctx.params, Mapping) else {}
        prompts = {prompt.name: prompt for prompt in await mcp.list_prompts()}
        name, arguments = params.get("name"), params.get("arguments") or {}
        prompt = prompts.get(name) if isinstance(name, str) else None
        if prompt is None:
            raise MCPError(INVALID_PARAMS, f"Unknown prompt {json.dumps(name)}: this server has {', '.join(prompts)}.")
        takes = {argument.name: argument for argument in prompt.arguments or []}
        names = ", ".join(takes) or "no arguments"
        if not isinstance(arguments, dict):
            raise MCPError(INVALID_PARAMS, f"The arguments of prompt {name} must be an object of texts ({names}).")
        for key, value in arguments.items():
            if key not in takes:
                raise MCPError(INVALID_PARAMS, f"Prompt {name} has no argument {json.dumps(key)}; it takes {names}.")
            if not isinstance(value, str):
                raise MCPError(INVALID_PARAMS, f"Argument {key} of prompt {name} must be text (a string).")
        if missing := [key for key, argument in takes.items() if argument.required and key not in arguments]:
            raise MCPError(INVALID_PARAMS, f"Prompt {name} needs the argument(s) {', '.join(missing)}.")
        try:
            return await call_next(ctx)
        except PydanticValidationError:
            raise MCPError(INVALID_PARAMS, f"Invalid prompts/get request: send a name and texts ({names}).") from None

    return check


async def _with_session_resources(ctx: RequestContext, call_next: CallNext) -> HandlerResult:
    """resources/list: the transcript of each session this server worked on for the caller, newest first."""
    result = await call_next(ctx)
    first_page = not (isinstance(ctx.params, Mapping) and ctx.params.get("cursor"))
    if ctx.method != "resources/list" or not isinstance(result, dict) or not first_page:
        return result
    state = ctx.lifespan_context
    headers = ctx.request.headers if isinstance(ctx.request, Request) else None
    try:
        async with caller_for(state.access, headers) as caller:
            mine = [caller.public(sid) for sid in state.sessions.of(owner_of(caller))]
    except FlowMCPError:  # no usable identity (a missing key, say): the listing goes on without sessions
        return result
    listed = [
        resource.model_dump(by_alias=True, mode="json", exclude_none=True) for resource in session_resources(mine)
    ]
    return {**result, "resources": [*result.get("resources", []), *listed]}


# -- stdio lines the SDK cannot read ---------------------------------------------------------------------------


class _AnsweringUnreadable:
    """The stdio read stream, answering each line the SDK could not read instead of dropping it.

    Dropped, such a line leaves the host waiting for an answer until its own timeout (60 s for many hosts).
    """

    def __init__(self, inner: ReadStream[SessionMessage | Exception], write: WriteStream[SessionMessage]) -> None:
        self._inner = inner
        self._write = write

    @property
    def last_context(self) -> Any:
        # The dispatcher runs each message in its sender's context, read from here.
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        while True:
            item = await self._inner.receive()
            if not isinstance(item, Exception):
                return item
            await self._write.send(SessionMessage(unreadable_answer(item)))

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> _AnsweringUnreadable:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> _AnsweringUnreadable:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def unreadable_answer(error: Exception) -> JSONRPCError:
    """The JSON-RPC error for a line the SDK could not read, for its request id when Python's json finds one."""
    value = _what_was_sent(error)
    request_id = value.get("id") if isinstance(value, dict) else None
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        request_id = None
    code, message = PARSE_ERROR, "Parse error: the line is not JSON. Send one JSON-RPC message per line."
    if isinstance(value, list):
        message = "Parse error: JSON-RPC batches are not supported. Send one message per line."
    elif isinstance(value, dict) and _is_unreadable_json(error):
        message = "Parse error: the message holds invalid Unicode (a lone surrogate, such as half an emoji)."
    elif value is not None:
        code, message = INVALID_REQUEST, "Invalid request: this is not a JSON-RPC 2.0 message."
    log.warning("unreadable_message", code=code, request_id=request_id, error_type=type(error).__name__)
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=message))


def _what_was_sent(error: Exception) -> Any:
    """The JSON value of the line, as Python reads it (it takes lone surrogates), or None if it is not JSON."""
    if not isinstance(error, PydanticValidationError) or not error.errors():
        return None
    received = error.errors()[0].get("input")
    if not _is_unreadable_json(error):
        return received  # JSON the SDK parsed, then found not to be a message
    try:
        return json.loads(received) if isinstance(received, str | bytes) else None
    except (ValueError, RecursionError):
        return None


def _is_unreadable_json(error: Exception) -> bool:
    return isinstance(error, PydanticValidationError) and error.errors()[0]["type"] == "json_invalid"
