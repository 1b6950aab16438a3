"""One request budget per FlowHunt key: a rate shared fairly by every caller, and a pause that a 429 imposes on all.

Every request of a FlowHuntClient passes ``RateGate.wait()`` first. Requests queue in lanes, one per caller
(``rate_lane``: the server names each tool call's caller; a library user has one lane), and the lanes take turns
(start-time fair queuing): a caller that floods the key delays another caller's request by at most one request
per busy lane, not by its whole backlog. Within a lane, first come, first served. A ``Retry-After`` from
FlowHunt holds back every request of the key, not only the one that got it.

The tokens and the pause live in a ``Bucket``: ``LocalBucket`` in this process, or one that replicas share
(flow_mcp.replicas, through Redis); the fair line of lanes is always this process's.
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol

import anyio

_LANE: ContextVar[str] = ContextVar("flow_mcp_rate_lane", default="")


@contextmanager
def rate_lane(caller: str) -> Iterator[None]:
    """Count the FlowHunt requests made inside the block as ``caller``'s, for the fair share of the key's budget."""
    token = _LANE.set(caller)
    try:
        yield
    finally:
        _LANE.reset(token)


@dataclass(order=True)
class _Ticket:
    tag: int  # the lane's turn: lanes take turns by tag, ties in arrival order
    arrival: int
    lane: str = field(compare=False)
    head: anyio.Event = field(compare=False, default_factory=anyio.Event)  # set when it becomes next in line


class Bucket(Protocol):
    """A key's request budget: tokens at a rate, and a pause that a 429 imposes."""

    async def take(self) -> float:
        """Take a token and return 0, or return the seconds to wait before asking again."""
        ...

    async def pause(self, seconds: float) -> None:
        """Hold every request back for ``seconds`` from now (a 429's Retry-After)."""
        ...

    @property
    def paused_for(self) -> float:
        """Seconds the pause still runs, as far as this process knows."""
        ...


class LocalBucket:
    """A token bucket (``rate`` per second, bursts up to ``burst``) and a pause, in this process."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else default_burst(rate)
        self._tokens = self.burst
        self._updated = time.monotonic()
        self._paused_until = 0.0

    async def take(self) -> float:
        return self.take_now()

    def take_now(self) -> float:
        """``take`` without awaiting anything."""
        pause = self.paused_for
        if pause > 0:
            return pause
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate

    async def pause(self, seconds: float) -> None:
        self.pause_now(seconds)

    def pause_now(self, seconds: float) -> None:
        """``pause`` without awaiting anything."""
        self._paused_until = max(self._paused_until, time.monotonic() + max(seconds, 0.0))

    @property
    def paused_for(self) -> float:
        return max(self._paused_until - time.monotonic(), 0.0)


def default_burst(rate: float) -> float:
    """How many requests may go at once after a quiet spell: one second's worth."""
    return max(1.0, rate)


class RateGate:
    """The key's ``Bucket`` (by default a ``LocalBucket`` of ``rate`` and ``burst``), served lane by lane."""

    def __init__(self, rate: float, burst: float | None = None, *, bucket: Bucket | None = None) -> None:
        self.bucket: Bucket = bucket if bucket is not None else LocalBucket(rate, burst)
        self._line: list[_Ticket] = []  # sorted: the first is served next
        self._arrivals = itertools.count()
        self._served_tag = 0  # the tag of the last ticket served: a lane that was idle starts from here
        self._next_tag: dict[str, int] = {}  # for lanes with tickets in line
        self._in_line: Counter[str] = Counter()

    async def pause(self, seconds: float) -> None:
        """Hold every request back for ``seconds`` from now (a 429's Retry-After)."""
        await self.bucket.pause(seconds)

    @property
    def paused_for(self) -> float:
        return self.bucket.paused_for

    @property
    def waiting(self) -> int:
        """Requests in line now."""
        return len(self._line)

    async def wait(self) -> None:
        """Return when a request of the current lane (``rate_lane``) may be sent."""
        if self.try_pass():
            return
        ticket = self._join(_LANE.get())
        try:
            while True:
                if self._line[0] is not ticket:
                    ticket.head = anyio.Event()
                    await ticket.head.wait()
                    continue
                delay = await self.bucket.take()
                if delay <= 0:
                    break
                # A ticket of a quieter lane may join ahead meanwhile; the loop then waits for its turn again.
                await anyio.sleep(delay)
            self._served_tag = ticket.tag
        finally:
            self._leave(ticket)

    def try_pass(self) -> bool:
        """Take a request's token now if nobody is in line and one is to spare (the common case), as ``wait`` would
        at once; False, and nothing taken, otherwise. A shared bucket is asked only by ``wait`` (it awaits I/O)."""
        if self._line or not isinstance(self.bucket, LocalBucket):
            return False
        return self.bucket.take_now() <= 0

    def _join(self, lane: str) -> _Ticket:
        tag = max(self._served_tag, self._next_tag.get(lane, 0))
        self._next_tag[lane] = tag + 1
        self._in_line[lane] += 1
        ticket = _Ticket(tag, next(self._arrivals), lane)
        bisect.insort(self._line, ticket)
        return ticket

    def _leave(self, ticket: _Ticket) -> None:
        was_first = self._line[0] is ticket
        self._line.remove(ticket)
        self._in_line[ticket.lane] -= 1
        if not self._in_line[ticket.lane]:
            del self._in_line[ticket.lane], self._next_tag[ticket.lane]
        if was_first and self._line:
            self._line[0].head.set()
