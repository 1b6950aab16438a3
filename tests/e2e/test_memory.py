"""A turn with 10,000 events or a 5 MB tool response gives a bounded result and leaves nothing behind."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator

import pytest
from mcp import Client

from flow_mcp.sandbox import SandboxConfig, SandboxServer
from flow_mcp.server.app import build_server

from ..support.servers import settings_for

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

# The sandbox shares this process and keeps every event it served: count only the server's side.
NOT_THE_SANDBOX = [tracemalloc.Filter(False, "*/flow_mcp/sandbox/*"), tracemalloc.Filter(False, "*/uuid.py")]


@pytest.fixture
def instant_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(pacing=0.0, seed=9)) as server:
        yield server


@pytest.mark.parametrize("message", ["events:10000", "export it: big output"])
async def test_a_huge_turn_gives_a_bounded_result_and_does_not_grow_the_process(
    instant_sandbox: SandboxServer, message: str
) -> None:
    settings = settings_for(instant_sandbox, max_rps=5000, timeout=30)
    async with Client(build_server(settings)) as client:
        await client.call_tool("ask", {"message": "warm up"})
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.take_snapshot().filter_traces(NOT_THE_SANDBOX)
        result = await client.call_tool("ask", {"message": message, "timeout_seconds": 120})
        body = result.structured_content
        assert body is not None and not result.is_error and body["status"] == "completed"
        del result
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(NOT_THE_SANDBOX)
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown < 3_000_000  # the 5 MB body or the 10,000 events are not kept
    assert len(body["tool_calls"]) <= 200 and len(body["actions"]) <= 200 and len(body["messages"]) <= 200
    assert all(len(call["output"] or "") < 3000 for call in body["tool_calls"])
    if "big output" in message:
        assert "truncated" in body["tool_calls"][-1]["output"] and "5242880" in body["tool_calls"][-1]["output"]
    else:
        assert body["events_count"] > 10_000
