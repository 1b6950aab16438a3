"""A chain of poll_events calls goes on with the polling schedule where the last call left it (the cursor carries it).

Counted in the sandbox's request log, never timed: a chain that resumes the schedule polls less than the same chain
made to start afresh on every call (a cursor stripped of its pace), and misses no event.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client

from flow_mcp.flowhunt.cursor import decode_cursor
from flow_mcp.flowhunt.schedule import Pace
from flow_mcp.sandbox import SandboxServer
from flow_mcp.server.app import build_server

from ..support.servers import settings_for, text_of

pytestmark = pytest.mark.anyio

# Two tool calls with their flow edits, in real time: about 2.5 s, eight events after the person's message.
TURN = (
    "timeline: load+100:search start+150:search end+700:search edit+150 start+250:read end+600:read edit+150 answer+300"
)


async def chain(sandbox: SandboxServer, *, resume: bool) -> tuple[int, int, str]:
    """invoke, then poll_events(wait_seconds=30) again and again until the turn ends: (polls, events, status)."""
    async with Client(build_server(settings_for(sandbox, poll_lateness=0.05, poll_rate=10.0))) as client:
        created = await client.call_tool("create_session", {})
        session = (created.structured_content or {})["session_id"]
        polled = _polls(sandbox)
        invoked = await client.call_tool("invoke", {"session_id": session, "message": TURN})
        cursor, events, status = (invoked.structured_content or {})["cursor"], 0, "running"
        with anyio.fail_after(30):
            while status == "running":
                if not resume:
                    cursor = decode_cursor(cursor).with_pace(Pace()).encode()  # as if the call knew nothing
                result = await client.call_tool(
                    "poll_events", {"session_id": session, "cursor": cursor, "wait_seconds": 30}
                )
                content: dict[str, Any] = result.structured_content or {}
                assert not result.is_error, text_of(result)
                cursor, status, events = content["cursor"], content["status"], events + len(content["events"])
        return _polls(sandbox) - polled, events, status


def _polls(sandbox: SandboxServer) -> int:
    return sum(1 for entry in sandbox.state.request_log() if entry["kind"] == "assistant_poll")


async def test_a_poll_events_chain_resumes_the_schedule_and_polls_less_than_one_that_starts_afresh(
    sandbox: SandboxServer,
) -> None:
    sandbox.state.update_config({"pacing": 1.0})
    resumed = await chain(sandbox, resume=True)
    afresh = await chain(sandbox, resume=False)
    assert resumed[1:] == afresh[1:] == (9, "completed")  # the message and its eight events, each once
    assert resumed[0] < afresh[0], (resumed, afresh)


async def test_ask_never_completes_a_turn_on_a_poll_sent_before_its_settle_window_closed(
    sandbox: SandboxServer,
) -> None:
    """A poll's answer shows FlowHunt as it was when it served the poll, somewhere between sending and receipt: a
    slow body (here every poll's, dripped over 0.4 s) comes in after the window closed, but proves nothing past
    when it was sent. The answer is followed by five thoughts 0.25 s apart, each inside a 0.3 s window: every one of
    them belongs to the turn."""
    sandbox.state.update_config({"pacing": 1.0, "rate_drip": 1.0, "drip_s": 0.4, "fault_only": "invocation_response"})
    message = "timeline: answer+800 note+250 note+250 note+250 note+250 note+250"
    async with Client(build_server(settings_for(sandbox, settle_seconds=0.3))) as client:
        with anyio.fail_after(30):
            result = await client.call_tool("ask", {"message": message})
    content: dict[str, Any] = result.structured_content or {}
    assert not result.is_error, text_of(result)
    session = sandbox.state.get_session(content["session_id"])
    assert session is not None
    assert content["status"] == "completed"
    assert content["events_count"] == len(sandbox.state.session_events(session)) == 7, text_of(result)
