"""The path of agents that drive a turn themselves: ``create_session``, ``invoke``, then a chain of
``poll_events(session_id, cursor, wait_seconds=30)`` calls over a real MCP client until the status is no longer
``running``.

An event's receipt time is when the call that returned it came back to this client; with think time (an agent's
model deciding what to do next between two calls) an event that becomes visible while the agent thinks waits for
the next call, and that wait counts as its latency, as it would for the person watching.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from mcp import Client
from mcp_types import CallToolResult, TextContent

from bench.common import GIVE_UP_S, now_ms
from bench.flowside import Followed

WAIT_SECONDS = 30


@dataclass
class Chained(Followed):
    """One turn followed by a poll_events chain, as the MCP client saw it."""

    calls: int = 0
    error: str | None = None


class ToolFailed(Exception):
    """A tool call came back as a tool error."""


async def _call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result: CallToolResult = await client.call_tool(tool, arguments)
    if result.is_error:
        text = next((c.text for c in result.content if isinstance(c, TextContent)), "tool error")
        raise ToolFailed(f"{tool}: {text[:300]}")
    return dict(result.structured_content or {})


async def chain(client: Client, message: str, delay: float, think: Callable[[], float] | None = None) -> Chained:
    """One turn after ``delay`` seconds; ``think()``, if given, is the pause before each call after the invoke."""
    await anyio.sleep(delay)
    turn = Chained()
    try:
        created = await _call(client, "create_session", {})
        turn.session_id = str(created["session_id"])
        invoked = await _call(client, "invoke", {"session_id": turn.session_id, "message": message})
        _received(turn, invoked)
        cursor = str(invoked["cursor"])
        give_up = time.monotonic() + GIVE_UP_S
        while time.monotonic() < give_up:
            if think is not None:
                await anyio.sleep(think())
            arguments = {"session_id": turn.session_id, "cursor": cursor, "wait_seconds": WAIT_SECONDS}
            polled = await _call(client, "poll_events", arguments)
            received = _received(turn, polled)
            turn.calls += 1
            cursor = str(polled["cursor"])
            turn.status = str(polled["status"])
            if turn.status != "running":
                turn.done_ms = received
                break
    except Exception as error:  # a failed chain is a figure, not a crash of the benchmark
        turn.error = f"{type(error).__name__}: {error}"
        turn.status = "error"
    return turn


def _received(turn: Chained, content: dict[str, Any]) -> float:
    at = now_ms()
    for event in content.get("events") or []:
        turn.receipts.setdefault(str(event["event_id"]), at)
    return at
