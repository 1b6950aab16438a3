"""``flow-mcp serve --transport http``: the MCP server over streamable HTTP, for many clients at once.

The SDK's own transport (``MCPServer.streamable_http_app``) behind uvicorn, plus what a shared server needs:
bearer tokens (``TokenTable``), Host/Origin checks against DNS rebinding, ``GET /healthz`` for load balancers,
and a graceful stop: after SIGTERM, running calls get ``FLOW_MCP_SHUTDOWN_GRACE`` seconds (``Drain``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import anyio
import structlog
import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.transport_security import TransportSecuritySettings
from sse_starlette.sse import AppStatus
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flow_mcp._version import __version__
from flow_mcp.config import HOW_TO_MAKE_ONE, MIN_SECRET_CHARS, HttpOptions, Settings
from flow_mcp.errors import ConfigurationError
from flow_mcp.server.app import build_server
from flow_mcp.server.callers import HttpAccess
from flow_mcp.server.runner import Drain

log = structlog.get_logger()

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_AFTER_GRACE_SECONDS = 10.0  # for calls cut at the end of the grace period to send what they have
HEALTH_PATH = "/healthz"


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server to this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def transport_security(options: HttpOptions) -> TransportSecuritySettings:
    """Which Host and Origin headers the MCP endpoint accepts; anything else gets 421 (Host) or 403 (Origin)."""
    if "*" in options.allowed_hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    names = list(_LOOPBACK_HOSTS)
    if options.host not in ("0.0.0.0", "::") and not is_loopback(options.host):  # noqa: S104 -- a comparison
        names.append(f"[{options.host}]" if ":" in options.host else options.host)
    names += options.allowed_hosts
    hosts: list[str] = []
    origins: list[str] = list(options.allowed_origins)
    for name in names:
        has_port = name.rsplit("]", 1)[-1].count(":") == 1
        # A proxy on a default port sends the name alone; a client on another port sends name:port.
        hosts += [name] if has_port else [name, f"{name}:*"]
        origins += [f"{scheme}://{name}" for scheme in ("http", "https")]
        origins += [] if has_port else [f"{scheme}://{name}:*" for scheme in ("http", "https")]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


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
    mcp = build_server(
        settings,
        http=HttpAccess(key_from_client=options.key_from_client),
        drain=drain,
        token_verifier=_StaticTokens(tokens) if tokens else None,
    )

    async def healthz(_: Request) -> JSONResponse:
        # No auth and no FlowHunt call: a load balancer asks whether this process serves, nothing more.
        stopping = drain.began.is_set()
        body = {"status": "stopping" if stopping else "ok", "version": __version__}
        return JSONResponse(body, status_code=503 if stopping else 200)

    mcp.custom_route(HEALTH_PATH, methods=["GET"], include_in_schema=False)(healthz)

    app = mcp.streamable_http_app(
        streamable_http_path=options.path,
        json_response=False,  # SSE responses, so progress notifications reach the client during ask
        stateless_http=options.stateless,
        transport_security=transport_security(options),
        host=options.host,
    )
    return _Stopping(app, drain)


class _Stopping:
    """ASGI wrapper that runs the graceful stop.

    It counts calls in flight (POSTs) and holds the long-lived GET streams. After SIGTERM it waits until no call
    is in flight, or the grace period ends (then running ``ask``s return "running" with a cursor), and then ends
    the GET streams, which would otherwise keep uvicorn waiting.
    """

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self._app = app
        self._drain = drain
        self._calls = 0
        self._idle: anyio.Event | None = None
        self._streams: set[anyio.CancelScope] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._stop_when_told)
                await self._app(scope, receive, send)
                tasks.cancel_scope.cancel()
        elif scope["type"] == "http" and scope["method"] == "GET" and scope["path"] != HEALTH_PATH:
            await self._stream(scope, receive, send)
        elif scope["type"] == "http":
            self._calls += 1
            try:
                await self._app(scope, receive, send)
            finally:
                self._calls -= 1
                if not self._calls and self._idle is not None:
                    self._idle.set()
        else:
            await self._app(scope, receive, send)

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        ended = False

        async def tracked(message: Message) -> None:
            nonlocal ended
            ended = ended or (message["type"] == "http.response.body" and not message.get("more_body", False))
            await send(message)

        with anyio.CancelScope() as stream:
            self._streams.add(stream)
            try:
                await self._app(scope, receive, tracked)
            finally:
                self._streams.discard(stream)
        if stream.cancelled_caught and not ended:
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
        for stream in list(self._streams):
            stream.cancel()
        AppStatus.should_exit = True  # ends any SSE response still open, now that no call needs one


class _Server(uvicorn.Server):
    """uvicorn, telling the drain when a signal asks it to stop, and logging where it listens."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self._drain = drain
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                log.info("server_listening", url=f"http://{_url_host(host)}:{port}")

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
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        log_config=None,  # logging is ours: JSON on stderr (uvicorn's default config logs to stdout)
        access_log=False,
        lifespan="on",
        # A backstop only: the drain ends calls at the grace period and streams right after.
        timeout_graceful_shutdown=int(settings.shutdown_grace + 2 * _AFTER_GRACE_SECONDS),
    )
    _Server(config, drain).run()


# -- bearer tokens --------------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z0-9_.@+-]{1,64}")
_HASHED = re.compile(r"sha256:([0-9a-fA-F]{64})")
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
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"FLOW_MCP_TOKENS_FILE {path} cannot be read ({type(error).__name__}).") from None
    entries = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, secret = line.partition(":")
        where = f"FLOW_MCP_TOKENS_FILE {path}, line {number}"
        if not sep or not _NAME.fullmatch(name.strip()):
            # The line is not echoed: it may hold a token.
            raise ConfigurationError(f"{where}: expected 'name:token' with a name of letters, digits, '_.@+-'.")
        hashed = _HASHED.fullmatch(secret.strip())
        digest = bytes.fromhex(hashed[1]) if hashed else _digest(_checked(secret.strip(), where))
        entries.append((name.strip(), digest))
    if not entries:
        raise ConfigurationError(f"FLOW_MCP_TOKENS_FILE {path} holds no 'name:token' line.")
    return entries


def _checked(token: str, where: str) -> str:
    if len(token) < MIN_SECRET_CHARS or any(c.isspace() for c in token):
        raise ConfigurationError(
            f"{where}: a token needs at least {MIN_SECRET_CHARS} characters and no spaces ({HOW_TO_MAKE_ONE})."
        )
    return token
