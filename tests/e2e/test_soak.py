"""Soak: a thousand asks cancelled mid-turn leave no polling task, and no memory, behind."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

import anyio
import pytest
from mcp import Client

from flow_mcp.sandbox import SandboxConfig, SandboxServer
from flow_mcp.server.app import build_server

from ..support.servers import settings_for
from .test_memory import NOT_THE_SANDBOX

pytestmark = pytest.mark.anyio

# Here the MCP client is in memory, so uvicorn, starlette and h11 serve only the sandbox; the thousand requests it
# sees cut off are logged by uvicorn with a traceback each, which pytest's log capture keeps. Neither is the server's.
NOT_THE_SERVER = [
    *NOT_THE_SANDBOX,
    *(tracemalloc.Filter(False, f"*/{name}/*") for name in ("uvicorn", "starlette", "h11")),
    *(tracemalloc.Filter(False, f"*/{name}") for name in ("logging/__init__.py", "traceback.py", "linecache.py")),
]


@pytest.mark.timeout(400)
async def test_a_thousand_cancelled_asks_leave_no_polling_task_or_memory_behind() -> None:
    with SandboxServer(SandboxConfig(pacing=0.2, seed=5)) as sandbox:
        settings = settings_for(sandbox, max_rps=5000, timeout=10)
        async with Client(build_server(settings)) as client:
            await client.call_tool("ask", {"message": "warm up"})
            gc.collect()
            tasks_before = len(asyncio.all_tasks())
            tracemalloc.start()
            baseline = tracemalloc.take_snapshot()

            ended = 0  # asks that returned before the cancel (on a loaded machine a create can time out)

            async def ask() -> None:
                nonlocal ended
                await client.call_tool("ask", {"message": "a long task please"})
                ended += 1

            # Generous bounds: a loaded 2-core machine needs time for a thousand invokes; the asserts below are what
            # this test is about.
            with anyio.fail_after(300):
                async with anyio.create_task_group() as tasks:
                    for _ in range(1000):
                        tasks.start_soon(ask)
                    with anyio.fail_after(240):  # every turn is being followed before they are cancelled
                        while invoked(sandbox) + ended < 1000:  # noqa: ASYNC110 - the sandbox has no event to await
                            await anyio.sleep(0.2)
                    await anyio.sleep(1.0)
                    tasks.cancel_scope.cancel()
            await anyio.sleep(1.0)  # cancellations settle
            requests_then = len(sandbox.state.request_log())
            await anyio.sleep(2.0)
            assert len(sandbox.state.request_log()) == requests_then  # no turn is still polled
            gc.collect()
            assert len(asyncio.all_tasks()) <= tasks_before + 2
            after = tracemalloc.take_snapshot().filter_traces(NOT_THE_SERVER)
            diffs = after.compare_to(baseline.filter_traces(NOT_THE_SERVER), "filename")
            tracemalloc.stop()
            grown = sum(stat.size_diff for stat in diffs)
            assert grown < 5_000_000  # nothing per turn stays behind (a thousand turns would hold far more)


def invoked(sandbox: SandboxServer) -> int:
    return sum(1 for entry in sandbox.state.request_log() if entry["path"].endswith("/invoke"))
