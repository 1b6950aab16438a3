"""Progress notifications of a followed turn: one per event, and heartbeats while nothing happens, numbered."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import anyio

from flow_mcp.flowhunt.cursor import Cursor
from flow_mcp.flowhunt.events import summarize
from flow_mcp.flowhunt.logger import get_logger
from flow_mcp.flowhunt.wire import RawEvent

log = get_logger()

Report = Callable[[float, float | None, str | None], Awaitable[None]]


class Progress:
    """Sends numbered progress messages; the count only grows, as MCP requires."""

    def __init__(self, report: Report) -> None:
        self._report = report
        self._sent = 0
        self._started = time.monotonic()
        self._last = self._started
        self._asking = False
        self.cursor: Cursor | None = None

    async def event(self, event: RawEvent) -> None:
        await self.send(summarize(event))

    async def send(self, message: str) -> None:
        self._sent += 1
        self._last = time.monotonic()
        try:
            await self._report(self._sent, None, message)
        except Exception as error:  # a client that went away must not end the turn's bookkeeping
            log.debug("progress_not_sent", error_type=type(error).__name__)

    async def heartbeats(self, every: float) -> None:
        """Run until cancelled: a message whenever nothing was sent for ``every`` seconds."""
        while True:
            await anyio.sleep(max(self._last + every - time.monotonic(), 0.05))
            if time.monotonic() - self._last >= every:
                await self.send(self._still_working())

    @contextmanager
    def asking(self) -> Iterator[None]:
        """A person is asked for the length of the block: the heartbeats say so."""
        self._asking = True
        try:
            yield
        finally:
            self._asking = False

    def _still_working(self) -> str:
        elapsed = int(time.monotonic() - self._started)
        if self._asking:
            return f"Waiting for your answer ({elapsed} s)"
        open_tools = self.cursor.progress.open_tools if self.cursor else ()
        if open_tools:
            return f"Still working ({elapsed} s): running {', '.join(open_tools)}"
        return f"Still working ({elapsed} s)"
