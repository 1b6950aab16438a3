"""One request budget per FlowHunt key: a rate shared fairly by every turn, and a pause that a 429 imposes on all.

Every request of a FlowHuntClient passes ``RateGate.wait()`` first. Waiters are served first come, first
served, so a turn that polls often cannot starve one that polls rarely; a ``Retry-After`` from FlowHunt holds
back every request of the key, not only the one that got it.
"""

from __future__ import annotations

import time

import anyio


class RateGate:
    """A token bucket (``rate`` per second, bursts up to ``burst``) with a shared pause."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self._rate = rate
        self._burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self._burst
        self._updated = time.monotonic()
        self._paused_until = 0.0
        self._turnstile = anyio.Lock()  # FIFO: waiters pass in arrival order

    def pause(self, seconds: float) -> None:
        """Hold every request back for ``seconds`` from now (a 429's Retry-After)."""
        self._paused_until = max(self._paused_until, time.monotonic() + max(seconds, 0.0))

    @property
    def paused_for(self) -> float:
        return max(self._paused_until - time.monotonic(), 0.0)

    async def wait(self) -> None:
        """Return when a request may be sent."""
        async with self._turnstile:
            while True:
                pause = self.paused_for
                if pause > 0:
                    await anyio.sleep(pause)
                    continue
                self._refill()
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await anyio.sleep((1 - self._tokens) / self._rate)

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
