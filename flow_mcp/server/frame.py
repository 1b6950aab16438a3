"""The frame every tool call runs in: who calls, the server's state, failures as tool errors, results in bounds.

The tools in tools.py (and the flow tools) are written inside this frame: `calling` names the caller and turns
every failure into a tool error that says what to do; `tool_result` shapes a result within its size limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
import structlog
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel

from flow_mcp.config import Settings
from flow_mcp.errors import FlowMCPError
from flow_mcp.flowhunt.logger import get_logger
from flow_mcp.flowhunt.ratelimit import rate_lane
from flow_mcp.server import paging, tracing
from flow_mcp.server.bookkeeping import CallsInFlight, RecentSessions
from flow_mcp.server.callers import Access, Caller, SessionRef
from flow_mcp.server.flowtools import FlowTools
from flow_mcp.server.results import describe
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


def state_of(ctx: Context[AppState]) -> AppState:
    return ctx.request_context.lifespan_context


def session_named(caller: Caller, given: str, hint: Hint) -> SessionRef:
    """The session the caller named; its kind goes into the hint, so that error texts name the right tools."""
    session = caller.session(given)
    hint.kind = session.kind
    return session


def touched(ctx: Context[AppState], caller: Caller, session: SessionRef) -> None:
    state_of(ctx).sessions.touch(owner_of(caller), session)


def owner_of(caller: Caller) -> str:
    """Who owns the sessions a caller touches: over HTTP one per client (and FlowHunt key), the one user on stdio.

    A session handle is bound to exactly that identity, so the handle of a fixed name stands for it.
    """
    return caller.public(SessionRef("sessions"))


def caller_of(ctx: Context[AppState]) -> AbstractAsyncContextManager[Caller]:
    """Who calls: over HTTP, the client the bearer token names, with the FlowHunt key it sent if it brings one."""
    return caller_for(state_of(ctx).access, ctx.headers)


def caller_for(access: Access, headers: Mapping[str, str] | None) -> AbstractAsyncContextManager[Caller]:
    """The Caller of a request with these HTTP headers (None on stdio), as ``caller_of``."""
    token = get_access_token()
    key_header = access.key_header
    api_key = (headers or {}).get(key_header) if key_header else None
    return access.caller(token.client_id if token else None, api_key)


@asynccontextmanager
async def calling(ctx: Context[AppState], tool: str, hint: Hint) -> AsyncIterator[Caller]:
    """A tool call's frame: its caller, and every failure turned into a tool error that says what to do."""
    hint.key_header = state_of(ctx).access.key_header
    with _tool_errors(tool, hint), tracing.tool_span(tool, ctx.request_context.meta, lambda: hint.session_id):
        async with caller_of(ctx) as caller:
            # The caller's name is also its lane in the key's request budget, so callers share it fairly.
            with structlog.contextvars.bound_contextvars(client=caller.name), rate_lane(caller.name):
                yield caller


def tool_result(ctx: Context[AppState], result: Model, text_of: Callable[[Model], str]) -> CallToolResult:
    """The tool result: ``text_of(result)`` and the structured content, within the size limit of a result."""
    limit = state_of(ctx).settings.max_result_bytes
    data, text = result.model_dump(mode="json"), text_of(result)
    if paging.json_size(data) + paging.json_size(text) > limit:
        # A safety net: the parts are bounded already (tool outputs, events per page); here long strings give way.
        log.warning("result_cut", size=paging.json_size(data) + paging.json_size(text), limit=limit)
        result = type(result).model_validate(paging.fit(data, limit // 2))
        data, text = result.model_dump(mode="json"), paging.fit(text_of(result), limit // 2)
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
