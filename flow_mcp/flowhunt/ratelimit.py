"""One request budget per FlowHunt key: a rate shared fairly by every caller, and a pause that a 429 imposes on all.

Every request of a FlowHuntClient passes ``RateGate.wait()`` first. Requests queue in lanes, one per caller
(``rate_lane``: the server names each tool call's caller; a library user has one lane), and the lanes take turns
(start-time fair queuing): a caller that floods the key delays another caller's request by at most one request
per busy lane, not by its whole backlog. Within a lane, first come, first served. A ``Retry-After`` from
FlowHunt holds back every request of the key, not only the one that got it.
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


class RateGate:
    """A token bucket (``rate`` per second, bursts up to ``burst``) with a shared pause, served lane by lane."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self._rate = rate
        self._burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self._burst
        self._updated = time.monotonic()
        self._paused_until = 0.0
        self._line: list[_Ticket] = []  # sorted: the first is served next
        self._arrivals = itertools.count()
        self._served_tag = 0  # the tag of the last ticket served: a lane that was idle starts from here
        self._next_tag: dict[str, int] = {}  # for lanes with tickets in line
        self._in_line: Counter[str] = Counter()

    def pause(self, seconds: float) -> None:
        """Hold every request back for ``seconds`` from now (a 429's Retry-After)."""
        self._paused_until = max(self._paused_until, time.monotonic() + max(seconds, 0.0))

    @property
    def paused_for(self) -> float:
        return max(self._paused_until - time.monotonic(), 0.0)

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
                delay = self._delay()
                if delay <= 0:
                    break
                # A ticket of a quieter lane may join ahead meanwhile; the loop then waits for its turn again.
                await anyio.sleep(delay)
            self._tokens -= 1
            self._served_tag = ticket.tag
        finally:
            self._leave(ticket)

    def try_pass(self) -> bool:
        """Take a request's token now if nobody is in line and one is to spare (the common case), as ``wait`` would
        at once; False, and nothing taken, otherwise."""
        if self._line or self._delay() > 0:
            return False
        self._tokens -= 1
        return True

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

    def _delay(self) -> float:
        pause = self.paused_for
        if pause > 0:
            return pause
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self._rate
