"""Which sessions have a turn that this process is following, or left running: one turn at a time per session."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

_MAX_REMEMBERED = 1000  # unfinished turns remembered; the oldest are forgotten first


class TurnBook:
    """In-process bookkeeping; a restart forgets it, which at worst lets one overlapping turn through."""

    def __init__(self) -> None:
        self._followed: dict[str, int] = {}
        self._unfinished: OrderedDict[str, str] = OrderedDict()

    @contextmanager
    def following(self, session_id: str) -> Iterator[None]:
        """Mark the session as followed by an ask for the duration of the block."""
        self._followed[session_id] = self._followed.get(session_id, 0) + 1
        try:
            yield
        finally:
            self._followed[session_id] -= 1
            if not self._followed[session_id]:
                del self._followed[session_id]

    def is_followed(self, session_id: str) -> bool:
        return session_id in self._followed

    def finished(self, session_id: str, running_cursor: str | None) -> None:
        """Record how an ask left its turn: still running (with the cursor to follow it) or ended."""
        self._unfinished.pop(session_id, None)
        if running_cursor is not None:
            self._unfinished[session_id] = running_cursor
            while len(self._unfinished) > _MAX_REMEMBERED:
                self._unfinished.popitem(last=False)

    def unfinished(self, session_id: str) -> str | None:
        """The cursor of the session's turn that an ask left running, if any."""
        return self._unfinished.get(session_id)
