"""The stdio transport's stdout on POSIX pipes: each message written straight to the pipe, never through a thread.

The SDK writes each message with two calls into a worker thread (write, then flush). Under load such a round trip
costs far more than the write itself (the GIL passes back and forth, up to a switch interval each way), and the one
writer does it for every progress notification of every turn: with 1,000 turns in flight, notifications queued for
seconds and the thread hops were the biggest single cost of the process. Here the pipe is non-blocking: a message
that fits (nearly all) is one system call on the event loop; when the pipe is full (the client reads slowly), the
writer waits for room without holding the loop up, and the SDK's writer waits on it, as it did on the thread.

As the SDK does with the descriptors it claims, fd 1 points at stderr while the server runs, so a stray write to
stdout (a library's print) cannot land in the middle of the protocol; the wire is a private duplicate. Anything that
is not a pipe or a socket (a terminal, a file) and Windows keep the SDK's own writer: there a non-blocking
descriptor would outlive the process in the terminal's state, and such a run serves one person, not 1,000 turns.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import anyio


class PipeWriter:
    """What the SDK's stdio writer needs of stdout (``write``, ``flush``), on a non-blocking descriptor."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._pending = bytearray()

    async def write(self, text: str) -> int:
        # Strict UTF-8, as the SDK's text layer over stdout encodes.
        self._pending += text.encode("utf-8")
        return len(text)

    async def flush(self) -> None:
        while self._pending:
            try:
                sent = os.write(self._fd, self._pending)
            except BlockingIOError:
                sent = 0
            del self._pending[:sent]
            if self._pending:
                await anyio.wait_writable(self._fd)


def _shares_its_file(fd: int, others: tuple[int, ...]) -> bool:
    """Whether ``fd`` is the same pipe or socket as one of ``others`` (stdin and stdout on one socket, as inetd,
    systemd's Accept=yes or socat give; stderr sent into stdout): making it non-blocking would make those so too."""
    try:
        mine = os.fstat(fd)
    except OSError:
        return False
    for other in others:
        try:
            theirs = os.fstat(other)
        except OSError:
            continue
        if (theirs.st_dev, theirs.st_ino) == (mine.st_dev, mine.st_ino):
            return True
    return False


def _is_pipe_or_socket(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@contextmanager
def claimed_stdout() -> Iterator[PipeWriter | None]:
    """While the block runs: the wire as a PipeWriter and fd 1 diverted to stderr; None where the SDK's writer stays.

    On the way out fd 1 is the wire again, blocking as it was.
    """
    if sys.platform == "win32" or not _is_pipe_or_socket(1) or _shares_its_file(1, (0, 2)):
        yield None
        return
    import fcntl  # POSIX only

    wire = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    if not _divert_stdout():
        os.close(wire)
        yield None
        return
    was_blocking = os.get_blocking(wire)
    try:
        os.set_blocking(wire, False)
        yield PipeWriter(wire)
    finally:
        # The flag belongs to the pipe's open file, which fd 1 shares again from here on.
        with suppress(OSError):
            os.set_blocking(wire, was_blocking)
        os.dup2(wire, 1)
        os.close(wire)


def _divert_stdout() -> bool:
    """Point fd 1 at stderr (or the null device); False, and fd 1 untouched, if neither could be had."""
    try:
        diversion = os.dup(2)
    except OSError:
        try:
            diversion = os.open(os.devnull, os.O_WRONLY)
        except OSError:
            return False
    try:
        os.dup2(diversion, 1)
    except OSError:
        return False
    finally:
        os.close(diversion)
    return True
