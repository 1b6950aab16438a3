"""Who is calling a tool: which FlowHunt client serves them, and what their session ids look like.

On stdio there is one user: one FlowHuntClient with the server's key, and session ids are FlowHunt's own (a published
flow's session with a ``flow.`` prefix). Over HTTP many clients share the server: session ids become handles bound
to the caller's identity (``SessionHandles``), and with ``key_from_client`` every caller brings their own FlowHunt
key (``ClientPool``). Either way a session id says which kind of session it is, so no tool asks the caller.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from flow_mcp.config import HOW_TO_MAKE_ONE, KEY_NOT_ASCII, Settings, is_sendable_key, key_fingerprint
from flow_mcp.errors import ConfigurationError, InvalidArgumentError, MissingKeyError, NotFoundError
from flow_mcp.flowhunt.client import FlowHuntClient, SessionKind, validate_session_id
from flow_mcp.flowhunt.ratelimit import RateGate
from flow_mcp.replicas import Coordination
from flow_mcp.server.results import MISSING_KEY_HELP

ANONYMOUS = "anonymous"
"""The identity of callers on a server without authentication."""

SECRET_NEEDED = (
    "--flowhunt-key-from-client needs FLOW_MCP_SECRET (16+ characters, the same on every replica): it keys the "
    f"session handles, which no client may be able to make; {HOW_TO_MAKE_ONE}"
)


@dataclass(frozen=True)
class HttpAccess:
    """How an HTTP server tells its callers apart."""

    key_from_client: bool = False
    """Each MCP client sends its own FlowHunt key (``key_header``); the server holds none."""
    key_header: str = "X-FlowHunt-Api-Key"


@dataclass(frozen=True)
class SessionRef:
    """A FlowHunt session: its id and its kind (a Flow Assistant's or a published flow's)."""

    id: str
    kind: SessionKind = "assistant"


FLOW_PREFIX = "flow."
"""How a flow session's id looks on stdio: '.' is outside FlowHunt's id alphabet, so it cannot be misread."""


@dataclass(frozen=True)
class Caller:
    """The FlowHunt client serving one tool call, and the caller's view of session ids."""

    client: FlowHuntClient
    name: str
    handles: SessionHandles | None = None

    @property
    def local(self) -> bool:
        """The caller runs on this machine (stdio), so a path it names is a path here."""
        return self.handles is None

    def session(self, given: str) -> SessionRef:
        """The FlowHunt session behind what the caller passed (a handle over HTTP)."""
        if self.handles is not None:
            return self.handles.open(given)
        if isinstance(given, str) and given.startswith(FLOW_PREFIX):
            return SessionRef(validate_session_id(given[len(FLOW_PREFIX) :]), "flow")
        return SessionRef(validate_session_id(given))

    def public(self, session: SessionRef) -> str:
        """What the caller sees as the session id."""
        if self.handles is not None:
            return self.handles.seal(session)
        return FLOW_PREFIX + session.id if session.kind == "flow" else session.id


class Access:
    """Hands out Callers; owns the FlowHunt clients and closes them."""

    def __init__(
        self,
        settings: Settings,
        factory: Callable[[Settings], FlowHuntClient],
        http: HttpAccess | None = None,
        shared: Coordination | None = None,
    ) -> None:
        self._settings = settings
        self._http = http
        if shared is not None:
            factory = _budgeted(factory, shared)
        self._pool = ClientPool(settings, factory) if http and http.key_from_client else None
        self._shared = None if self._pool else factory(settings)
        secret = server_secret(settings, self._pool is not None)
        self._handle_key = handle_key(secret.get_secret_value()) if secret is not None else None

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
        if self._handle_key is None:
            raise ConfigurationError(SECRET_NEEDED) if self._pool is not None else MissingKeyError(MISSING_KEY_HELP)
        async with AsyncExitStack() as stack:
            if self._pool is not None:
                if not api_key:
                    raise ConfigurationError(
                        f"This server uses each client's own FlowHunt API key: send it in the "
                        f"{self._http.key_header} header (in your MCP host's config for this server)."
                    )
                if not is_sendable_key(api_key):
                    raise ConfigurationError(
                        f"The FlowHunt API key in the {self._http.key_header} header {KEY_NOT_ASCII}, and send your "
                        "FlowHunt key as plain ASCII in that header."
                    )
                client = await stack.enter_async_context(self._pool.lease(api_key))
                # Two people behind one bearer token but with different FlowHunt keys still get apart sessions.
                identity = f"{name}\0{key_fingerprint(api_key)}"
            else:
                assert self._shared is not None
                client, identity = self._shared, name
            yield Caller(client, name, SessionHandles(self._handle_key, identity))


def _budgeted(
    factory: Callable[[Settings], FlowHuntClient], shared: Coordination
) -> Callable[[Settings], FlowHuntClient]:
    """``factory``, its clients drawing on their key's budget in ``shared`` (which replicas may share)."""

    def make(settings: Settings) -> FlowHuntClient:
        client = factory(settings)
        key = settings.api_key.get_secret_value() if settings.api_key is not None else ""
        bucket = shared.bucket(key_fingerprint(key), settings.max_rps)
        client.gate = RateGate(settings.max_rps, bucket=bucket)
        return client

    return make


def server_secret(settings: Settings, key_from_client: bool) -> SecretStr | None:
    """What keys an HTTP server's session handles and sealed state, if anything does: the same on every replica."""
    # Only what the server holds may key handles: a key a caller sends would let that caller make handles for any
    # session id it learns. Without FLOW_MCP_SECRET the server's own FlowHunt key does: it is secret, the same on
    # every replica and across restarts, which is all a handle key needs.
    if settings.secret is not None:
        return settings.secret
    return None if key_from_client else settings.api_key


# -- session handles --------------------------------------------------------------------------------
# A handle is the FlowHunt id encrypted with AES-SIV (RFC 5297: deterministic authenticated encryption) under a key
# only the server holds, with the caller's identity as associated data: it does not reveal the id (a capability
# FlowHunt honours without a key), nobody else can make one, and it opens for its own caller only. Deterministic,
# so one session keeps one handle. Canonical UUIDs (what FlowHunt hands out) travel as their 16 bytes. The first byte
# says how the id travels and the session's kind; the assistant's forms are those of handles made before flows.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_FORMS: dict[tuple[SessionKind, bool], bytes] = {
    ("assistant", True): b"u",
    ("assistant", False): b"t",
    ("flow", True): b"f",
    ("flow", False): b"g",
}
_FORM_OF = {form: kind_and_uuid for kind_and_uuid, form in _FORMS.items()}
_KEY_INFO = b"flow-mcp session handle v2"
HANDLE_PATTERN = re.compile(r"^(flow\.)?[A-Za-z0-9_-]{1,194}$")  # used with fullmatch
"""What tools accept as a session id: a FlowHunt id (stdio, as client.SESSION_ID_PATTERN, with ``flow.`` before a
flow session's) or a handle (HTTP): at most base64url of 1 + 128 + 16 bytes (form, the longest id, the SIV)."""


def handle_key(secret: str) -> bytes:
    """The AES-SIV key for handles, from FLOW_MCP_SECRET or the server's own FlowHunt key."""
    return HKDF(SHA256(), length=64, salt=None, info=_KEY_INFO).derive(secret.encode())


class SessionHandles:
    """Seals and opens the session handles of one client identity."""

    def __init__(self, key: bytes, identity: str) -> None:
        self._cipher = AESSIV(key)
        self._identity = [identity.encode()]

    def seal(self, session: SessionRef) -> str:
        """The handle this identity uses for ``session``."""
        as_uuid = bool(_UUID.fullmatch(session.id))
        body = uuid.UUID(session.id).bytes if as_uuid else session.id.encode()
        plain = _FORMS[session.kind, as_uuid] + body
        return base64.urlsafe_b64encode(self._cipher.encrypt(plain, self._identity)).decode().rstrip("=")

    def open(self, handle: str) -> SessionRef:
        """The session inside ``handle``, if it was sealed for this identity.

        A handle of another identity, a forged one and a bare FlowHunt id all get the same NotFoundError as a
        session FlowHunt does not know: a caller learns nothing about sessions that are not theirs.
        """
        if not isinstance(handle, str) or not HANDLE_PATTERN.fullmatch(handle):
            raise InvalidArgumentError(
                "Malformed session_id: pass the session_id exactly as create_session, ask or run_flow returned it."
            )
        try:
            plain = self._cipher.decrypt(base64.urlsafe_b64decode(handle + "=" * (-len(handle) % 4)), self._identity)
        except (InvalidTag, ValueError):  # binascii.Error is a ValueError
            raise NotFoundError(404, "no such session") from None
        if plain[:1] not in _FORM_OF:  # sealed by a later version: as unknown as a forged handle
            raise NotFoundError(404, "no such session")
        kind, as_uuid = _FORM_OF[plain[:1]]
        body = plain[1:]
        return SessionRef(str(uuid.UUID(bytes=body)) if as_uuid else body.decode(), kind)


# -- one FlowHunt client per key --------------------------------------------------------------------------------
IDLE_SECONDS = 600.0
MAX_IDLE_CLIENTS = 256


@dataclass
class _Entry:
    client: FlowHuntClient
    users: int = 0
    last_used: float = field(default_factory=time.monotonic)


class ClientPool:
    """One FlowHuntClient per API key, leased for the length of a tool call."""

    def __init__(self, settings: Settings, factory: Callable[[Settings], FlowHuntClient]) -> None:
        self._settings = settings
        self._factory = factory
        self._entries: dict[str, _Entry] = {}  # by the key's SHA-256: the dict never holds a key as such

    def __len__(self) -> int:
        return len(self._entries)

    @asynccontextmanager
    async def lease(self, api_key: str) -> AsyncIterator[FlowHuntClient]:
        """The client for ``api_key``, kept open while the block runs."""
        await self._close_idle()
        fingerprint = key_fingerprint(api_key)
        entry = self._entries.get(fingerprint)
        if entry is None:
            # The server's own workspace id belongs to the server's key, not to this one: discover it per key.
            own = self._settings.model_copy(update={"api_key": SecretStr(api_key), "workspace_id": None})
            entry = self._entries[fingerprint] = _Entry(self._factory(own))
        entry.users += 1
        try:
            yield entry.client
        finally:
            entry.users -= 1
            entry.last_used = time.monotonic()

    async def aclose(self) -> None:
        entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            await entry.client.aclose()

    async def _close_idle(self) -> None:
        now = time.monotonic()
        idle = sorted(
            ((entry.last_used, fingerprint) for fingerprint, entry in self._entries.items() if not entry.users),
            reverse=True,
        )
        # Keep the most recently used idle clients (their pools are warm), up to a bound and an age.
        for rank, (last_used, fingerprint) in enumerate(idle):
            if rank >= MAX_IDLE_CLIENTS or now - last_used > IDLE_SECONDS:
                await self._entries.pop(fingerprint).client.aclose()
