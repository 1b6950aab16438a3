"""``flow-mcp serve --transport http``: the MCP server over streamable HTTP, for many clients at once.

The SDK's own transport (``MCPServer.streamable_http_app``) behind uvicorn, plus what a shared server needs:
bearer tokens (``TokenTable``), ``GET /healthz`` for load balancers, the guards against hostile clients
(guards.py: Host/Origin checks, sessions per client, slow connections), and a graceful stop: after SIGTERM,
running calls get ``FLOW_MCP_SHUTDOWN_GRACE`` seconds (``Drain``) and the process ends soon after.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import math
import os
import re
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import anyio
import anyio.to_thread
import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.transport_security import TransportSecuritySettings
from sse_starlette.sse import AppStatus
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flow_mcp._version import __version__
from flow_mcp.config import HOW_TO_MAKE_ONE, MIN_SECRET_CHARS, HttpOptions, Settings
from flow_mcp.errors import ConfigurationError
from flow_mcp.flowhunt.logger import get_logger
from flow_mcp.replicas import coordination
from flow_mcp.server.app import build_server
from flow_mcp.server.bookkeeping import Drain
from flow_mcp.server.callers import HttpAccess
from flow_mcp.server.guards import (
    HEALTH_PATH,
    MAX_SESSIONS_PER_CLIENT,
    SESSION_IDLE_SECONDS,
    ConnectionLimits,
    Front,
    HostCheck,
    SessionQuota,
    connection_limit,
    guarded_protocol,
)
from flow_mcp.server.tracing import TraceHeaders
from flow_mcp.telemetry import sdk as telemetry_sdk

log = get_logger()

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_AFTER_GRACE_SECONDS = 3.0  # for calls cut at the end of the grace period to send what they have


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server to this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_check(options: HttpOptions) -> HostCheck:
    """Which Host and Origin headers the MCP endpoint accepts; anything else gets 421 (Host) or 403 (Origin).

    ``--allowed-host '*'`` turns off the Host check only: Origin is still checked, or any web page could call the
    tools of a loopback server through DNS rebinding.
    """
    names = list(_LOOPBACK_HOSTS)
    if options.host not in ("0.0.0.0", "::") and not is_loopback(options.host):  # noqa: S104 -- a comparison
        names.append(f"[{options.host}]" if ":" in options.host else options.host)
    names += [name for name in options.allowed_hosts if name != "*"]
    hosts: list[str] = []
    origins: list[str] = list(options.allowed_origins)
    for name in names:
        has_port = name.rsplit("]", 1)[-1].count(":") == 1
        # A proxy on a default port sends the name alone; a client on another port sends name:port.
        hosts += [name] if has_port else [name, f"{name}:*"]
        origins += [f"{scheme}://{name}" for scheme in ("http", "https")]
        origins += [] if has_port else [f"{scheme}://{name}:*" for scheme in ("http", "https")]
    return HostCheck(None if "*" in options.allowed_hosts else tuple(hosts), tuple(origins))


class _StaticTokens:
    """The SDK's TokenVerifier over a TokenTable: the token's name becomes the client id."""

    def __init__(self, table: TokenTable) -> None:
        self._table = table

    async def verify_token(self, token: str) -> AccessToken | None:
        name = self._table.identify(token)
        # The AccessToken carries the name, not the token: nothing downstream needs the secret itself.
        return AccessToken(token=f"client:{name}", client_id=name, scopes=[]) if name else None


def build_http_app(
    settings: Settings,
    options: HttpOptions,
    tokens: TokenTable,
    *,
    drain: Drain,
) -> ASGIApp:
    """The ASGI app: the MCP endpoint at ``options.path``, ``GET /healthz``, and the graceful stop."""
    shared = coordination(settings)
    mcp = build_server(
        settings,
        http=HttpAccess(key_from_client=options.key_from_client),
        drain=drain,
        token_verifier=_StaticTokens(tokens) if tokens else None,
        shared=shared,
    )

    async def healthz(_: Request) -> JSONResponse:
        # No auth and no FlowHunt call: a load balancer asks whether this process serves, nothing more. A replica
        # that lost Redis still serves (degraded: on its own budget), so it stays 200.
        stopping = drain.began.is_set()
        body = {"status": "stopping" if stopping else "ok", "version": __version__, **shared.health()}
        return JSONResponse(body, status_code=503 if stopping else 200)

    mcp.custom_route(HEALTH_PATH, methods=["GET"], include_in_schema=False)(healthz)

    app = mcp.streamable_http_app(
        streamable_http_path=options.path,
        json_response=False,  # SSE responses, so progress notifications reach the client during ask
        stateless_http=options.stateless,
        session_idle_timeout=SESSION_IDLE_SECONDS,
        # Front checks Host and Origin, before authentication; the SDK's own check would come after it.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        host=options.host,
    )
    quota = None
    # The quota needs to tell clients apart: by token, or on loopback, where anonymous callers are this machine's
    # user. Behind --no-auth anonymous is a whole team, which the proxy in front authenticates (and limits).
    if not options.stateless and (tokens or is_loopback(options.host)):
        quota = SessionQuota(mcp.session_manager, tokens.identify if tokens else None, MAX_SESSIONS_PER_CLIENT)
    return _Stopping(Front(TraceHeaders(app), options.path, host_check(options), quota), drain)


class _Stopping:
    """ASGI wrapper that runs the graceful stop.

    It counts calls in flight (any request but a GET stream) and can cancel every request it passes on. After
    SIGTERM it waits until no call is in flight, or the grace period ends (then running ``ask``s return "running"
    with a cursor, and get a moment to send it); then it ends whatever still runs: the GET streams, and requests
    of clients too slow to finish (a body dripped a byte at a time, an answer nobody reads).
    """

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self._app = app
        self._drain = drain
        self._calls = 0
        self._idle: anyio.Event | None = None
        self._running: set[anyio.CancelScope] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._stop_when_told)
                await self._app(scope, receive, send)
                tasks.cancel_scope.cancel()
        elif scope["type"] != "http" or scope["path"] == HEALTH_PATH:
            await self._app(scope, receive, send)
        elif scope["method"] == "GET":
            await self._cancellable(scope, receive, send)
        else:
            self._calls += 1
            try:
                await self._cancellable(scope, receive, send)
            finally:
                self._calls -= 1
                if not self._calls and self._idle is not None:
                    self._idle.set()

    async def _cancellable(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = ended = False

        async def tracked(message: Message) -> None:
            nonlocal started, ended
            started = started or message["type"] == "http.response.start"
            ended = ended or (message["type"] == "http.response.body" and not message.get("more_body", False))
            await send(message)

        with anyio.CancelScope() as request:
            self._running.add(request)
            try:
                await self._app(scope, receive, tracked)
            finally:
                self._running.discard(request)
        if request.cancelled_caught and not ended:
            # Close the response properly; bounded, since a client that reads nothing would block the send.
            with anyio.move_on_after(1):
                if not started:
                    await PlainTextResponse("Server stopping", status_code=503)(scope, receive, send)
                else:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _until_idle(self) -> None:
        while self._calls:
            self._idle = anyio.Event()
            await self._idle.wait()

    async def _stop_when_told(self) -> None:
        await self._drain.began.wait()
        log.info("server_stopping", calls_in_flight=self._calls, grace_seconds=self._drain.grace_seconds)
        with anyio.move_on_after(self._drain.grace_seconds):
            await self._until_idle()
        if self._calls:
            log.warning("grace_period_over", calls_in_flight=self._calls)
        self._drain.expire()
        with anyio.move_on_after(_AFTER_GRACE_SECONDS):
            await self._until_idle()
        if self._calls:
            log.warning("requests_cut", calls_in_flight=self._calls)
        for request in list(self._running):
            request.cancel()
        AppStatus.should_exit = True  # ends any SSE response still open, now that no call needs one


class _Server(uvicorn.Server):
    """uvicorn, telling the drain when a signal asks it to stop, and logging where it listens."""

    def __init__(self, config: uvicorn.Config, drain: Drain, limits: ConnectionLimits) -> None:
        super().__init__(config)
        self._drain = drain
        self._limits = limits
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                url = f"http://{_url_host(host)}:{port}"
                log.info("server_listening", url=url, max_connections=self._limits.max_connections)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        # uvicorn then re-raises the signal that stopped it, and a process ended by a signal runs no atexit hook.
        await anyio.to_thread.run_sync(telemetry_sdk.shutdown)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._drain.begin)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def serve_http(settings: Settings, options: HttpOptions, tokens: TokenTable) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully."""
    # sse-starlette would end every SSE response at the signal, cutting running asks off from their answers;
    # the drain ends them itself once the calls are done.
    AppStatus.enable_automatic_graceful_drain = False
    drain = Drain(settings.shutdown_grace)
    app = build_http_app(settings, options, tokens, drain=drain)
    limits = ConnectionLimits(connection_limit())
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        http=guarded_protocol(limits),
        ws="none",
        log_config=None,  # logging is ours: JSON on stderr (uvicorn's default config logs to stdout)
        access_log=False,
        lifespan="on",
        # A backstop: the drain ends every request by the grace period plus _AFTER_GRACE_SECONDS.
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace + _AFTER_GRACE_SECONDS) + 1,
    )
    _Server(config, drain, limits).run()


# -- bearer tokens --------------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z0-9_.@+-]{1,64}")
_HASH_PREFIX = "sha256:"
_HASHED = re.compile(r"[0-9a-fA-F]{64}")
SINGLE_TOKEN_NAME = "default"  # noqa: S105 -- a client name, not a password
"""The client name of FLOW_MCP_TOKEN, the one-token setup."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class TokenTable:
    """Client names by the SHA-256 of their token. Lookups compare every entry in constant time."""

    entries: tuple[tuple[str, bytes], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entries)

    def identify(self, token: str) -> str | None:
        """The name of the client whose token this is, or None."""
        presented = _digest(token)
        found = None
        for name, digest in self.entries:  # no early exit: the time taken says nothing about which entry matched
            if hmac.compare_digest(presented, digest):
                found = name
        return found

    @classmethod
    def load(cls, *, token: str | None = None, tokens_file: Path | None = None) -> TokenTable:
        """FLOW_MCP_TOKEN (client name "default") and the lines of FLOW_MCP_TOKENS_FILE."""
        entries: list[tuple[str, bytes]] = []
        if token is not None:
            entries.append((SINGLE_TOKEN_NAME, _digest(_checked(token, "FLOW_MCP_TOKEN"))))
        if tokens_file is not None:
            entries += _read_file(tokens_file)
        names = [name for name, _ in entries]
        if len(set(names)) != len(names):
            raise ConfigurationError(
                f"Token names must be unique; {sorted({n for n in names if names.count(n) > 1})} repeat."
            )
        if len({digest for _, digest in entries}) != len(entries):
            raise ConfigurationError("Two clients share one token: give each client its own token.")
        return cls(tuple(entries))


def _read_file(path: Path) -> list[tuple[str, bytes]]:
    try:
        # utf-8-sig: editors on Windows start a UTF-8 file with a byte order mark.
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        readable_by_others = os.name == "posix" and bool(path.stat().st_mode & stat.S_IROTH)
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"FLOW_MCP_TOKENS_FILE {path} cannot be read ({type(error).__name__}).") from None
    if readable_by_others:
        log.warning("tokens_file_readable_by_others", path=str(path), help=f"chmod 600 {path}")
    entries = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, secret = line.partition(":")
        name, secret = name.strip(), secret.strip()
        where = f"FLOW_MCP_TOKENS_FILE {path}, line {number}"
        if not sep or not _NAME.fullmatch(name):
            # The line is not echoed: it may hold a token.
            raise ConfigurationError(f"{where}: expected 'name:token' with a name of letters, digits, '_.@+-'.")
        entries.append((name, _stored_digest(secret, where)))
    if not entries:
        raise ConfigurationError(f"FLOW_MCP_TOKENS_FILE {path} holds no 'name:token' line.")
    return entries


def _stored_digest(secret: str, where: str) -> bytes:
    """The SHA-256 a line stands for: written out after 'sha256:', or that of the token on the line."""
    if not secret.startswith(_HASH_PREFIX):
        return _digest(_checked(secret, where))
    hex_digest = secret.removeprefix(_HASH_PREFIX)
    # A hash says nothing of the token's length: only the one who made it can see to a long token.
    if not _HASHED.fullmatch(hex_digest):
        raise ConfigurationError(
            f"{where}: after 'sha256:' put the 64 hex digits of a long token's SHA-256 "
            f"(printf %s TOKEN | sha256sum; {HOW_TO_MAKE_ONE})."
        )
    return bytes.fromhex(hex_digest)


def _checked(token: str, where: str) -> str:
    if len(token) < MIN_SECRET_CHARS or any(c.isspace() for c in token):
        raise ConfigurationError(
            f"{where}: a token needs at least {MIN_SECRET_CHARS} characters and no spaces ({HOW_TO_MAKE_ONE})."
        )
    return token
