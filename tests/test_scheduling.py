"""One request budget per key: fair, paused for everyone by a 429, and released by cancelled calls."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import tracemalloc

import anyio
import anyio.lowlevel
import pytest
from mcp import Client

from flow_mcp.errors import RateLimitError
from flow_mcp.flowhunt.client import FlowHuntClient
from flow_mcp.flowhunt.ratelimit import RateGate
from flow_mcp.sandbox import SandboxConfig, SandboxServer
from flow_mcp.server.app import build_server

from .conftest import settings_for

pytestmark = pytest.mark.anyio


async def test_the_gate_lets_requests_through_in_arrival_order() -> None:
    gate = RateGate(rate=50, burst=1)
    order: list[int] = []

    async def request(number: int) -> None:
        await gate.wait()
        order.append(number)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            for number in range(20):
                tasks.start_soon(request, number)
                await anyio.lowlevel.checkpoint()  # arrive one after the other
    assert order == list(range(20))


async def test_the_gate_never_exceeds_its_rate() -> None:
    gate = RateGate(rate=20, burst=1)
    started = time.monotonic()
    with anyio.fail_after(10):
        for _ in range(21):
            await gate.wait()
    assert time.monotonic() - started >= 0.95  # 20 more tokens at 20 per second, whatever the machine's speed


async def test_a_429_pauses_every_turn_of_the_key_not_only_the_one_that_got_it(sandbox: SandboxServer) -> None:
    settings = settings_for(sandbox, max_retries=4, retry_max_seconds=10)

    async def keep_polling(client: FlowHuntClient, session_id: str) -> None:
        # Turns that poll all along: without a shared pause, some of their requests would land in a pause.
        until = time.monotonic() + 4
        while time.monotonic() < until:
            with contextlib.suppress(RateLimitError):  # running out of retries is fine here: timing is the point
                await client.poll(session_id, "0")

    async with FlowHuntClient(settings) as client:
        sessions = [(await client.create_session()).session_id for _ in range(4)]
        # Retry-After of 2 s: sent as an HTTP date (whole seconds) it still leaves more than the quiet window below.
        sandbox.state.update_config(
            {"rate_429": 0.05, "retry_after_s": 2.0, "seed": 3, "fault_only": "/invocation_response"}
        )
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tasks:
                for session_id in sessions:
                    tasks.start_soon(keep_polling, client, session_id)
    log = sorted(sandbox.state.request_log(), key=lambda entry: entry["at_ms"])
    refusals = [entry for entry in log if entry["status"] == 429]
    assert refusals
    for refusal in refusals:
        # Nothing of this key reaches FlowHunt while the Retry-After runs (a little slack for requests in flight).
        quiet_from, quiet_to = refusal["at_ms"] + 100, refusal["at_ms"] + 500
        assert not [entry for entry in log if quiet_from < entry["at_ms"] < quiet_to]


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

            async def ask() -> None:
                await client.call_tool("ask", {"message": "a long task please"})

            # Generous bounds: a loaded 2-core machine needs time for a thousand invokes; the asserts below are what
            # this test is about.
            with anyio.fail_after(300):
                async with anyio.create_task_group() as tasks:
                    for _ in range(1000):
                        tasks.start_soon(ask)
                    with anyio.fail_after(240):  # every turn is being followed before they are cancelled
                        while sum(1 for e in sandbox.state.request_log() if e["path"].endswith("/invoke")) < 1000:  # noqa: ASYNC110 - the sandbox has no event to await
                            await anyio.sleep(0.2)
                    await anyio.sleep(1.0)
                    tasks.cancel_scope.cancel()
            await anyio.sleep(1.0)  # cancellations settle
            requests_then = len(sandbox.state.request_log())
            await anyio.sleep(2.0)
            assert len(sandbox.state.request_log()) == requests_then  # no turn is still polled
            gc.collect()
            assert len(asyncio.all_tasks()) <= tasks_before + 2
            # The sandbox shares this process and keeps every session it served: count only the server's side.
            not_the_sandbox = [
                tracemalloc.Filter(False, "*/flow_mcp/sandbox/*"),
                tracemalloc.Filter(False, "*/uuid.py"),
            ]
            after = tracemalloc.take_snapshot().filter_traces(not_the_sandbox)
            diffs = after.compare_to(baseline.filter_traces(not_the_sandbox), "filename")
            tracemalloc.stop()
            grown = sum(stat.size_diff for stat in diffs)
            assert grown < 5_000_000  # nothing per turn stays behind (a thousand turns would hold far more)
