"""The stdio server's stdout (server/stdout.py): straight to a non-blocking pipe.

Claiming fd 1, in processes of their own: tests/e2e/test_stdout_claim.py.
"""

from __future__ import annotations

import os
import sys

import anyio
import pytest

from flow_mcp.server.stdout import PipeWriter

pytestmark = pytest.mark.anyio

POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="the SDK's own writer serves stdout on Windows")


@POSIX_ONLY
async def test_a_full_pipe_makes_the_writer_wait_without_stopping_the_event_loop() -> None:
    # Far more than a pipe holds, read slowly by a task of the same event loop: a write that blocked the loop would
    # starve the reader, and the two would never finish.
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    os.set_blocking(read_fd, False)
    messages = [f'{{"n": {n}, "pad": "{"x" * 4000}"}}\n' for n in range(300)]
    received = bytearray()

    async def read_slowly() -> None:
        expected = sum(len(m) for m in messages)
        while len(received) < expected:
            await anyio.wait_readable(read_fd)
            received.extend(os.read(read_fd, 8192))
            await anyio.sleep(0.001)

    writer = PipeWriter(write_fd)
    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(read_slowly)
                for message in messages:  # as the SDK's stdio writer does, message by message
                    await writer.write(message)
                    await writer.flush()
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert received.decode() == "".join(messages)
