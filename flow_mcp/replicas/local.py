"""The ``Coordination`` interface, and ``InProcess``: this process's own budget, session holds and cancellations.

``InProcess`` is what a single server always had; a restart forgets it, which at worst lets one overlapping turn
through. ``RedisCoordination`` (shared.py) keeps one of these as its fallback while Redis is away.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from flow_mcp.flowhunt.ratelimit import Bucket, LocalBucket

Position = Callable[[], "str | None"]
"""Where the turn a hold guards stands now: the cursor a refused caller can follow it from, when known."""


@dataclass(frozen=True)
class Held:
    """A session whose turn someone else follows (here or on another replica), and where it stood then."""

    cursor: str | None
    elsewhere: bool = False  # held by another replica


class Lease(Protocol):
    """A hold on a session's turn; ``release`` gives it up (once the turn's call returns)."""

    async def release(self) -> None: ...


class Coordination(Protocol):
    """What the replicas of one server share; every method is bounded in time and never raises for Redis's sake.

    Entered (``async with``) for the server's lifetime: that starts and stops what runs in the background.
    """

    async def __aenter__(self) -> Coordination: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def bucket(self, fingerprint: str, rate: float) -> Bucket:
        """The request budget of the key with this fingerprint (tokens, and the pause a 429 imposes)."""
        ...

    async def hold(self, fingerprint: str, session_id: str, *, check: bool, position: Position) -> Lease | Held:
        """Hold the session's turn; with ``check``, a session held already is refused (``Held``) instead."""
        ...

    async def left_running(self, fingerprint: str, session_id: str) -> str | None:
        """The cursor of the session's turn that an earlier call returned still running, if any."""
        ...

    async def leave(self, fingerprint: str, session_id: str, cursor: str | None) -> None:
        """Record how a call left the session's turn: still running (with its cursor) or ended (None)."""
        ...

    async def cancel(self, call: str) -> None:
        """Tell every replica to cancel the call with this digest (see ``on_cancel``)."""
        ...

    def on_cancel(self, callback: Callable[[str], object]) -> None:
        """Have ``callback(digest)`` called for each call any replica was asked to cancel."""
        ...

    def health(self) -> dict[str, Any]:
        """What /healthz adds about the shared state (nothing in process)."""
        ...


_MAX_REMEMBERED = 1000  # turns left running remembered; the oldest are forgotten first


class _LocalLease:
    def __init__(self, holds: dict[tuple[str, str], list[Position]], key: tuple[str, str], position: Position):
        self._holds, self._key, self._position = holds, key, position
        holds.setdefault(key, []).append(position)

    async def release(self) -> None:
        self.release_now()

    def release_now(self) -> None:
        holders = self._holds.get(self._key, [])
        if self._position in holders:
            holders.remove(self._position)
        if not holders:
            self._holds.pop(self._key, None)


class InProcess:
    """Each process on its own: the budget per process, holds and cancellations seen by this process only."""

    def __init__(self) -> None:
        self._holds: dict[tuple[str, str], list[Position]] = {}
        self._left: OrderedDict[tuple[str, str], str] = OrderedDict()

    async def __aenter__(self) -> InProcess:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def bucket(self, fingerprint: str, rate: float) -> LocalBucket:
        return LocalBucket(rate)

    async def hold(self, fingerprint: str, session_id: str, *, check: bool, position: Position) -> Lease | Held:
        return self.hold_now(fingerprint, session_id, check=check, position=position)

    def hold_now(self, fingerprint: str, session_id: str, *, check: bool, position: Position) -> _LocalLease | Held:
        """``hold`` without awaiting anything."""
        key = (fingerprint, session_id)
        holders = self._holds.get(key)
        if check and holders:
            return Held(holders[0]())
        return _LocalLease(self._holds, key, position)

    async def left_running(self, fingerprint: str, session_id: str) -> str | None:
        return self._left.get((fingerprint, session_id))

    async def leave(self, fingerprint: str, session_id: str, cursor: str | None) -> None:
        self.leave_now(fingerprint, session_id, cursor)

    def leave_now(self, fingerprint: str, session_id: str, cursor: str | None) -> None:
        """``leave`` without awaiting anything."""
        key = (fingerprint, session_id)
        self._left.pop(key, None)
        if cursor is not None:
            self._left[key] = cursor
            while len(self._left) > _MAX_REMEMBERED:
                self._left.popitem(last=False)

    async def cancel(self, call: str) -> None:
        return None  # the caller has tried this process's calls already; there is nowhere else

    def on_cancel(self, callback: Callable[[str], object]) -> None:
        return None

    def health(self) -> dict[str, Any]:
        return {}
