"""The MCP face's spans: one per tool call, one per turn a tool follows, and the trace an HTTP request brings.

The MCP SDK already makes a SERVER span per request (``tools/call ask``), continuing the trace context a client
sends in the request's ``_meta``; the tool span is its child, and the FlowHunt requests' spans
(``flowhunt/client.py``) are children of the tool's or the turn's. Over HTTP a ``traceparent`` header is honoured
too, for clients that trace their HTTP calls rather than their MCP requests. All of it goes through
``flow_mcp.telemetry``, at no cost while telemetry is off.

The attributes name the tool, the session by the handle the caller sees (on stdio the FlowHunt session id itself),
and how the turn went; never a key, a token or a message's text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

from flow_mcp import telemetry
from flow_mcp.flowhunt.client import SessionKind
from flow_mcp.server.callers import HANDLE_PATTERN
from flow_mcp.server.results import AskResult

TOOL = "flow_mcp.tool"
SESSION = "flow_mcp.session"
KIND = "flowhunt.session.kind"
STATUS = "flow_mcp.turn.status"
_TALLIES = {telemetry.POLLS: "flow_mcp.turn.polls", telemetry.EVENTS: "flow_mcp.turn.events"}


def _handle(given: str | None) -> str | None:
    """A session handle fit for an attribute: one shaped like a handle, not whatever a caller put there."""
    return given if given is not None and HANDLE_PATTERN.fullmatch(given) else None


@contextmanager
def tool_span(tool: str, meta: Any, session: Callable[[], str | None]) -> Iterator[None]:
    """A tool call's span; ``session()`` names its session at the end (a new session is known only then)."""
    carrier = meta if isinstance(meta, dict) else None
    with telemetry.span(f"tool {tool}", {TOOL: tool}, carrier=carrier) as span:
        try:
            yield
        finally:
            span.set({SESSION: _handle(session())})


@contextmanager
def turn_span(session: str | None, kind: SessionKind) -> Iterator[Callable[[AskResult], None]]:
    """A turn followed by a tool, and its duration in the histogram; the block calls the function with its result.

    Polls and events count those of this call (a turn an earlier call began goes on here); credits are the turn's.
    """
    started, status = time.monotonic(), "error"
    attrs = {SESSION: _handle(session), KIND: kind}
    with telemetry.span("turn", attrs, tally=_TALLIES) as span:

        def finished(result: AskResult) -> None:
            nonlocal status
            status = result.status
            span.set({STATUS: status, "flow_mcp.turn.credits": result.credits})

        try:
            yield finished
        except anyio.get_cancelled_exc_class():
            status = "cancelled"
            raise
        finally:
            telemetry.record(telemetry.TURN_DURATION, time.monotonic() - started, {STATUS: status, KIND: kind})


class TraceHeaders:
    """ASGI: an HTTP request's ``traceparent``/``tracestate`` become the current trace context while it is served.

    The SDK runs the MCP request in the context its HTTP request was read in, so its span and ours continue that
    trace; a ``traceparent`` in the request's ``_meta`` still comes first (the SDK's span takes it over this).
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not telemetry.is_on():
            await self._app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers", ())
            if name in (b"traceparent", b"tracestate")
        }
        with telemetry.attached(carrier):
            await self._app(scope, receive, send)
