"""No tool waits forever on FlowHunt: with every request stalled, each call ends within the bounds its settings set."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client

from flow_mcp.sandbox import SandboxServer
from flow_mcp.server.app import build_server

from ..support.servers import settings_for

pytestmark = pytest.mark.anyio

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("create_session", {}),
    ("invoke", {"session_id": "some-session", "message": "hi"}),
    ("poll_events", {"session_id": "some-session", "cursor": "0"}),
    ("poll_events", {"session_id": "some-session", "cursor": "0", "wait_seconds": 2}),
    ("ask", {"message": "hi", "timeout_seconds": 2}),
]


@pytest.mark.parametrize(("tool", "arguments"), CALLS, ids=[f"{tool}-{i}" for i, (tool, _) in enumerate(CALLS)])
async def test_every_tool_returns_in_bounded_time_when_flowhunt_stalls(
    fresh_sandbox: SandboxServer, tool: str, arguments: dict[str, Any]
) -> None:
    # Each request may take `timeout`, and is tried 1 + max_retries times with at most retry_max_seconds between.
    # A sandbox of its own: stalled requests go on for 30 s after the test (a stalled create then makes a session).
    settings = settings_for(fresh_sandbox, timeout=0.4, max_retries=1, retry_max_seconds=0.5, workspace_id="ws-sandbox")
    fresh_sandbox.state.update_config({"rate_stall": 1.0, "stall_s": 30.0})
    async with Client(build_server(settings)) as client:
        with anyio.fail_after(15):  # far above what the settings allow, far below the 30 s stall
            result = await client.call_tool(tool, arguments)
    assert result.is_error or (result.structured_content or {}).get("status") == "running"
