"""FlowHunt clients by API key, for a server whose MCP clients each send their own key.

Each key gets its own FlowHuntClient, so its own connection pool, request budget (FLOW_MCP_MAX_RPS), 429 pause
and workspace discovery: one client's burst or rate limit never slows another's. A client is made on first use
and closed once nobody has used it for a while.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from pydantic import SecretStr

from flow_mcp.client import FlowHuntClient
from flow_mcp.config import Settings

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
        fingerprint = hashlib.sha256(api_key.encode()).hexdigest()
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
