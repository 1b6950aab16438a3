"""What a shared HTTP server needs against hostile clients, in front of the SDK's transport.

``Front``: only the MCP endpoint and ``/healthz`` exist; the endpoint checks Host and Origin (DNS rebinding), then
``SessionQuota`` caps each client's open MCP sessions. ``guarded_protocol``: uvicorn's HTTP/1.1 protocol with a
deadline for each request's head and body (slowloris) and a cap on connections that drops the slow ones first.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from flow_mcp.flowhunt.logger import get_logger
from flow_mcp.server.callers import ANONYMOUS

log = get_logger()

HEALTH_PATH = "/healthz"
MAX_SESSIONS_PER_CLIENT = 64
"""Open MCP sessions one client (a token name; all anonymous callers of a loopback server) may hold at once."""
SESSION_IDLE_SECONDS = 600
"""An MCP session with no request in flight and no open stream for this long ends (the SDK's own default: 30 min)."""
READ_SECONDS = 10.0
"""A client has this long to send a request's head, and again its body; then its connection is closed."""
MAX_CONNECTIONS = 4096
_LIMIT_LOG_SECONDS = 60.0  # at most one "connection limit reached" line a minute, however hard the flood


@dataclass(frozen=True)
class HostCheck:
    """Which Host and Origin headers the MCP endpoint accepts; ``hosts`` None accepts any Host.

    Patterns are names, ``name:port``, or ``name:*`` (the name with any port).
    """

    hosts: tuple[str, ...] | None
    origins: tuple[str, ...]

    def host_ok(self, host: str | None) -> bool:
        return self.hosts is None or _matches(host, self.hosts)

    def origin_ok(self, origin: str | None) -> bool:
        # Browsers send Origin on cross-site requests; other clients and same-origin requests need not.
        return not origin or _matches(origin, self.origins)


def _matches(value: str | None, patterns: tuple[str, ...]) -> bool:
    if not value:
        return False
    return any(
        value == pattern
        or (pattern.endswith(":*") and value.startswith(pattern[:-1]) and value[len(pattern) - 1 :].isdigit())
        for pattern in patterns
    )


class Front:
    """ASGI: what every request meets first.

    Only the MCP endpoint (with or without a trailing slash) and ``/healthz`` exist: anything else is a 404, never
    a redirect (Starlette's slash redirects build their URL from the Host header). The endpoint checks Host (421)
    and Origin (403) before anything else, including authentication, then the session quota.
    """

    def __init__(self, app: ASGIApp, path: str, check: HostCheck, quota: SessionQuota | None) -> None:
        self._app = app
        self._path = path
        self._paths = {path, path.rstrip("/") + "/"}
        self._check = check
        self._quota = quota

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == HEALTH_PATH:
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["path"] not in self._paths:
            reply: Response | None = PlainTextResponse("Not Found", status_code=404)
        elif not self._check.host_ok(headers.get("host")):
            reply = PlainTextResponse("Invalid Host header", status_code=421)
        elif not self._check.origin_ok(headers.get("origin")):
            reply = PlainTextResponse("Invalid Origin header", status_code=403)
        else:
            reply = None
        if reply is not None:
            await reply(scope, receive, send)
            return
        scope = {**scope, "path": self._path, "raw_path": self._path.encode()}
        if self._quota is None:
            await self._app(scope, receive, send)
        else:
            await self._quota(self._app, scope, receive, send)


class SessionQuota:
    """At most ``limit`` open MCP sessions per client, so that one client cannot fill the SDK's session table (at
    10,000 it answers every new session with 503, whoever asks)."""

    def __init__(
        self, manager: StreamableHTTPSessionManager, name_of: Callable[[str], str | None] | None, limit: int
    ) -> None:
        """``name_of`` names the client of a bearer token (None: a server without tokens, all callers anonymous)."""
        self._manager = manager
        self._name_of = name_of
        self._limit = limit
        self._sessions: dict[str, set[str]] = {}  # client -> ids of the sessions it opened
        self._opening: Counter[str] = Counter()  # client -> its requests that may open a session now

    async def __call__(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        client = self._client(headers) if _opens_session(scope, headers) else None
        if client is None:  # no new session, or no valid token (the SDK answers 401)
            await app(scope, receive, send)
            return
        if self._open(client) >= self._limit:
            log.warning("session_limit_reached", client=client, limit=self._limit)
            await self._refusal()(scope, receive, send)
            return
        self._opening[client] += 1
        opening = True

        async def noting(message: Message) -> None:
            nonlocal opening
            if message["type"] == "http.response.start" and opening:
                opening = False
                self._opening[client] -= 1
                session = Headers(raw=message["headers"]).get(MCP_SESSION_ID_HEADER)
                if message["status"] < 400 and session:
                    self._sessions.setdefault(client, set()).add(session)
            await send(message)

        try:
            await app(scope, receive, noting)
        finally:
            if opening:
                self._opening[client] -= 1

    def _client(self, headers: Headers) -> str | None:
        if self._name_of is None:
            return ANONYMOUS
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return self._name_of(token) if scheme.lower() == "bearer" else None

    def _open(self, client: str) -> int:
        mine = self._sessions.get(client, set())
        # mcp 2.3 keeps its open sessions in this dict, by id; a session that ends (DELETE, idle, crash) leaves it.
        mine.intersection_update(self._manager._server_instances.keys())
        return len(mine) + self._opening[client]

    def _refusal(self) -> Response:
        message = (
            f"Too many open MCP sessions for this client ({self._limit}). Close sessions you no longer use (an MCP "
            f"client closes its own when it disconnects); idle ones end after {SESSION_IDLE_SECONDS // 60} minutes."
        )
        body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}}
        return JSONResponse(body, status_code=429)


def _opens_session(scope: Scope, headers: Headers) -> bool:
    # As the SDK routes: a POST without a session id on a handshake-era protocol (or none named) opens a session;
    # 2026-07-28 requests are stateless.
    version = headers.get("mcp-protocol-version")
    return (
        scope["method"] == "POST"
        and MCP_SESSION_ID_HEADER not in headers
        and (version is None or version in HANDSHAKE_PROTOCOL_VERSIONS)
    )


# -- connections ------------------------------------------------------------------------------------------------


def connection_limit() -> int:
    """Connections to serve at once: half the files this process may open (FlowHunt connections need the rest)."""
    if sys.platform == "win32":
        return MAX_CONNECTIONS
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return MAX_CONNECTIONS if soft == resource.RLIM_INFINITY else max(8, min(MAX_CONNECTIONS, soft // 2))


@dataclass
class ConnectionLimits:
    """The bounds of ``guarded_protocol`` and the connections it watches."""

    max_connections: int
    read_seconds: float = READ_SECONDS
    waiting: dict[_Guarded, None] = field(default_factory=dict)
    """Connections waiting for their client to send a request or its body, longest waiting first."""
    last_logged: float = float("-inf")


def guarded_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol class bounded by ``limits``, for ``uvicorn.Config(http=...)``."""

    class Guarded(_Guarded):
        _limits = limits

    return Guarded


class _Guarded(H11Protocol):
    """A connection that a slow or idle client cannot hold.

    uvicorn times out idle keep-alive connections only, and any byte resets that timer: a client that sends a
    request a byte at a time holds its connection (and a file descriptor) for ever. Here a client has
    ``read_seconds`` from connecting (or from the end of the previous response) to send a request's head, and
    again to send its body; data that trickles in does not extend it. Past ``max_connections`` a new connection
    makes room by closing the one that has waited longest for its client, so clients that send whole requests are
    served during a flood; only when every connection is busy with a request is the new one closed.
    """

    _limits: ClassVar[ConnectionLimits]
    _phase: tuple[str, object] | None = None
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limits = self._limits
        if len(self.connections) > limits.max_connections:
            victim = next(iter(limits.waiting), self)
            victim._drop()
            if time.monotonic() - limits.last_logged > _LIMIT_LOG_SECONDS:
                limits.last_logged = time.monotonic()
                log.warning("connection_limit_reached", max_connections=limits.max_connections)
            if victim is self:
                return
        self._follow()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._wait_for(None)

    def _follow(self) -> None:
        # What the connection waits for now: a request head, the rest of a body, or nothing (the app has it).
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            phase: tuple[str, object] | None = ("head", cycle)
        elif cycle.more_body:
            phase = ("body", cycle)
        else:
            phase = None
        if phase != self._phase:
            self._wait_for(phase)

    def _wait_for(self, phase: tuple[str, object] | None) -> None:
        self._phase = phase
        waiting = self._limits.waiting
        waiting.pop(self, None)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if phase is not None and not self.transport.is_closing():
            waiting[self] = None
            self._deadline = self.loop.call_later(self._limits.read_seconds, self._drop)

    def _drop(self) -> None:
        self._wait_for(None)
        self.transport.close()
