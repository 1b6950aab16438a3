"""What the server keeps across tool calls, in this process: the sessions each caller touched, the calls in flight
(to cancel them), and whether it is stopping. (Which sessions have a turn followed or left running is kept by
flow_mcp.replicas: in this process, or shared by replicas through Redis.)
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import anyio

from flow_mcp.server.callers import SessionRef

# -- which sessions each caller touched ----------------------------------------------------------------------

_MAX_OWNERS = 1000  # callers remembered; the least recently active are forgotten first
_MAX_SESSIONS_PER_OWNER = 50


class RecentSessions:
    """The sessions this server touched, per owner, most recent first; bounded, in-process."""

    def __init__(self) -> None:
        self._by_owner: OrderedDict[str, OrderedDict[SessionRef, None]] = OrderedDict()

    def touch(self, owner: str, session: SessionRef) -> None:
        sessions = self._by_owner.pop(owner, None) or OrderedDict()
        sessions.pop(session, None)
        sessions[session] = None
        while len(sessions) > _MAX_SESSIONS_PER_OWNER:
            sessions.popitem(last=False)
        self._by_owner[owner] = sessions
        while len(self._by_owner) > _MAX_OWNERS:
            self._by_owner.popitem(last=False)

    def of(self, owner: str) -> list[SessionRef]:
        """The owner's sessions, most recently touched first."""
        return list(reversed(self._by_owner.get(owner, {})))


# -- calls in flight, to cancel ------------------------------------------------------------------------------

CallKey = tuple[str | None, ...]


def call_digest(key: CallKey) -> str:
    """What stands for a call between replicas: a digest of who sent it and its id, never the parts themselves."""
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


class CallsInFlight:
    """Running requests by who sent them and their JSON-RPC id, so that a cancellation can reach them.

    The SDK cancels a request when its own connection carries the cancellation; a stateless HTTP server gives
    every POST a connection of its own, so there the cancellation arrives where the request is unknown, or at
    another replica (which passes it on through flow_mcp.replicas: ``cancel_digest`` here).
    """

    def __init__(self) -> None:
        self._scopes: dict[CallKey, list[anyio.CancelScope]] = {}
        self._keys: dict[str, CallKey] = {}  # by call_digest

    @contextmanager
    def running(self, key: CallKey) -> Iterator[anyio.CancelScope]:
        """A block that ``cancel(key)`` cancels; check ``cancelled_caught`` afterwards."""
        with anyio.CancelScope() as scope:
            self._scopes.setdefault(key, []).append(scope)
            self._keys[call_digest(key)] = key
            try:
                yield scope
            finally:
                self._scopes[key].remove(scope)
                if not self._scopes[key]:
                    del self._scopes[key], self._keys[call_digest(key)]

    def cancel(self, key: CallKey) -> bool:
        """Cancel the one request under ``key``; with none, or several (an id reused), cancel nothing."""
        scopes = self._scopes.get(key, [])
        if len(scopes) != 1:
            return False
        scopes[0].cancel()
        return True

    def cancel_digest(self, digest: str) -> bool:
        """``cancel`` the call whose ``call_digest`` this is, if it runs here."""
        key = self._keys.get(digest)
        return key is not None and self.cancel(key)


# -- graceful stop -------------------------------------------------------------------------------------------


class Drain:
    """The server's shutdown state, shared by every tool call.

    After SIGTERM, running tool calls get a grace period. Following a turn happens inside ``guard()``; when the
    grace period ends, the guarded blocks are cancelled and the tools return the turn so far with status
    "running" and a cursor, so the client goes on with ``poll_events`` on another replica instead of losing a
    dropped connection.
    """

    def __init__(self, grace_seconds: float = 30.0) -> None:
        self.grace_seconds = grace_seconds
        self.expired = False
        self._began: anyio.Event | None = None
        self._scopes: set[anyio.CancelScope] = set()

    @property
    def began(self) -> anyio.Event:
        """Set once the server was told to stop. Created on first use, inside the event loop."""
        if self._began is None:
            self._began = anyio.Event()
        return self._began

    def begin(self) -> None:
        """The server was told to stop (call it from the event loop's thread)."""
        self.began.set()

    def expire(self) -> None:
        """The grace period is over: cut every guarded block short."""
        self.expired = True
        for scope in list(self._scopes):
            scope.cancel()

    @contextmanager
    def guard(self) -> Iterator[anyio.CancelScope]:
        """A block that the end of the grace period cancels; check ``cancelled_caught`` afterwards."""
        with anyio.CancelScope() as scope:
            if self.expired:
                scope.cancel()
            self._scopes.add(scope)
            try:
                yield scope
            finally:
                self._scopes.discard(scope)
