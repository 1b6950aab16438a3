"""RateGate: one request budget per key, handed out in arrival order and never faster than its rate."""

from __future__ import annotations

import time

import anyio
import anyio.lowlevel
import pytest

from flow_mcp.flowhunt.ratelimit import RateGate

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


async def test_a_request_passes_at_once_only_with_a_token_to_spare_and_nobody_in_line() -> None:
    gate = RateGate(rate=0.001, burst=2)  # no token comes back during the test
    assert gate.try_pass() and gate.try_pass()
    assert not gate.try_pass()  # the burst is spent
    gate = RateGate(rate=0.001, burst=3)
    await gate.pause(60)
    assert not gate.try_pass()  # a 429's pause holds every request back
    gate = RateGate(rate=1000, burst=1)
    gate.try_pass()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(gate.wait)
        await anyio.lowlevel.checkpoint()
        assert gate.waiting == 1 and not gate.try_pass()  # one is in line: it goes first
    assert gate.waiting == 0
