"""Graceful shutdown: after SIGTERM, running tool calls get a grace period, then return what they have.

Following a turn happens inside ``Drain.guard()``. When the grace period ends, the guarded blocks are
cancelled and the tools return the turn so far with status "running" and a cursor, so the client can go on
with ``poll_events`` on another replica instead of losing a dropped connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio


class Drain:
    """The server's shutdown state, shared by every tool call."""

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
