"""The polling schedule's state in the cursor against values FlowHunt should never send: whatever a batch held, the
cursor a call returns is one the next call takes (a real MCP client, a scripted FlowHunt over loopback HTTP)."""

from __future__ import annotations

import pytest

from ..support.upstream import Upstream
from .test_attack_findings import ANSWER, body, event, poll, server

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("duration_ms", [-5, 1e300, 2**60])
async def test_a_tool_end_stamped_before_its_start_with_a_wild_duration_leaves_a_cursor_the_next_call_takes(
    duration_ms: float,
) -> None:
    start = event("start", 5000, "v3_tool_call_start", tool_name="search")
    end = event("end", 4000, "v3_tool_call_end", tool_name="search", duration_ms=duration_ms)
    with Upstream() as upstream:
        upstream.script(poll=body(start))
        async with server(upstream) as client:
            first = await poll(client, "1000")
            upstream.script(poll=body(start, end))  # the end made visible late, stamped before the start
            second = await poll(client, first["cursor"])
            upstream.script(poll=body(start, end, ANSWER))
            third = await poll(client, second["cursor"])
    assert [e["event_id"] for e in second["events"]] == ["end"]
    assert [e["event_id"] for e in third["events"]] == ["answer"]


@pytest.mark.parametrize("action", ["agent_cot", "v3_tool_call_start"])
async def test_an_event_stamped_past_what_json_carries_exactly_leaves_a_cursor_the_next_call_takes(action: str) -> None:
    beyond = event("beyond", 9_500_000_000_000_000, action, tool_name="search")  # past 2**53, within the wire's 10**16
    with Upstream() as upstream:
        upstream.script(poll=body(beyond))
        async with server(upstream) as client:
            first = await poll(client, "1000")
            upstream.script(poll=body(beyond, ANSWER))
            later = await poll(client, first["cursor"])
    assert [e["event_id"] for e in later["events"]] == ["answer"]
