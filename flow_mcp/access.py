"""Who is calling a tool: which FlowHunt client serves them, and what their session ids look like.

On stdio there is one user: one FlowHuntClient with the server's key, and session ids are FlowHunt's own.
Over HTTP many clients share the server: session ids become handles signed for the caller's identity
(``handles.py``), and with ``key_from_client`` every caller brings their own FlowHunt key (``clientpool.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from flow_mcp.client import MISSING_KEY_HELP, FlowHuntClient, validate_session_id
from flow_mcp.clientpool import ClientPool
from flow_mcp.config import Settings
from flow_mcp.errors import ConfigurationError
from flow_mcp.handles import SessionHandles, handle_key

ANONYMOUS = "anonymous"
"""The identity of callers on a server without authentication."""


@dataclass(frozen=True)
class HttpAccess:
    """How an HTTP server tells its callers apart."""

    key_from_client: bool = False
    """Each MCP client sends its own FlowHunt key (``key_header``); the server holds none."""
    key_header: str = "X-FlowHunt-Api-Key"


@dataclass(frozen=True)
class Caller:
    """The FlowHunt client serving one tool call, and the caller's view of session ids."""

    client: FlowHuntClient
    name: str
    handles: SessionHandles | None = None

    def session(self, given: str) -> str:
        """The FlowHunt session id behind what the caller passed (a handle over HTTP)."""
        return validate_session_id(given) if self.handles is None else self.handles.open(given)

    def public(self, session_id: str) -> str:
        """What the caller sees as the session id."""
        return session_id if self.handles is None else self.handles.seal(session_id)


class Access:
    """Hands out Callers; owns the FlowHunt clients and closes them."""

    def __init__(
        self, settings: Settings, factory: Callable[[Settings], FlowHuntClient], http: HttpAccess | None = None
    ) -> None:
        self._settings = settings
        self._http = http
        self._pool = ClientPool(settings, factory) if http and http.key_from_client else None
        self._shared = None if self._pool else factory(settings)

    async def __aenter__(self) -> Access:
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._shared is not None:
            await self._shared.aclose()
        if self._pool is not None:
            await self._pool.aclose()

    @property
    def key_header(self) -> str | None:
        """The header that carries each caller's FlowHunt key, when callers bring their own."""
        return self._http.key_header if self._http and self._http.key_from_client else None

    @asynccontextmanager
    async def caller(self, name: str | None = None, api_key: str | None = None) -> AsyncIterator[Caller]:
        """The Caller for an authenticated client ``name`` (None: no authentication) sending ``api_key``."""
        name = name or ANONYMOUS
        if self._http is None:
            assert self._shared is not None  # stdio always has the shared client
            yield Caller(self._shared, name)
            return
        async with AsyncExitStack() as stack:
            if self._pool is not None:
                if not api_key:
                    raise ConfigurationError(
                        f"This server uses each client's own FlowHunt API key: send it in the "
                        f"{self._http.key_header} header (in your MCP host's config for this server)."
                    )
                client = await stack.enter_async_context(self._pool.lease(api_key))
                # Two people behind one bearer token but with different FlowHunt keys still get apart sessions.
                identity = f"{name}\0{hashlib.sha256(api_key.encode()).hexdigest()}"
                secret = self._settings.secret.get_secret_value() if self._settings.secret else api_key
            else:
                assert self._shared is not None
                client, identity = self._shared, name
                secret = self._server_secret()
            yield Caller(client, name, SessionHandles(handle_key(secret), identity))

    def _server_secret(self) -> str:
        # Without FLOW_MCP_SECRET the server's FlowHunt key signs handles: it is secret, the same on every
        # replica and across restarts, which is all a handle key needs.
        if self._settings.secret is not None:
            return self._settings.secret.get_secret_value()
        if self._settings.api_key is None:
            raise ConfigurationError(MISSING_KEY_HELP)
        return self._settings.api_key.get_secret_value()
