"""``flow-mcp demo``: the whole path on a fresh machine, no account needed.

A sandbox in a background thread, ``flow-mcp serve`` launched as a real stdio subprocess, a real MCP
client: list the tools, ask with streamed progress, then a follow-up ask in the same session.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from mcp import Client, StdioServerParameters

from flow_mcp.cli.turns import call_showing_progress
from flow_mcp.sandbox import SandboxConfig, SandboxServer

FIRST_QUESTION = "Build a flow that answers customer questions from our help-center docs."
FOLLOW_UP = "Add a step that hands the conversation to a human when the customer is angry."
_ASSISTANT_TOOLS = ("ask", "create_session", "invoke", "poll_events")


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _say(text: str = "") -> None:
    _write(text + "\n")


async def run_demo() -> int:
    """Run the demo; 0 only if every step worked."""
    # Faster than real time, still slow enough to watch the progress stream by.
    with SandboxServer(SandboxConfig(pacing=0.4)) as sandbox:
        env = {
            **os.environ,
            "FLOWHUNT_BASE_URL": sandbox.url,
            "FLOWHUNT_API_KEY": sandbox.config.api_key,
            "FLOW_MCP_LOG_LEVEL": "warning",
        }
        env.pop("FLOWHUNT_WORKSPACE_ID", None)
        server = StdioServerParameters(command=sys.executable, args=["-m", "flow_mcp", "serve"], env=env)
        _say(f"FlowHunt sandbox running at {sandbox.url}")
        _say("Starting `flow-mcp serve` as a stdio MCP server and connecting an MCP client…")
        async with Client(server) as client:
            tools = sorted(tool.name for tool in (await client.list_tools()).tools)
            _say(f"Tools: {', '.join(tools)}")
            if not set(_ASSISTANT_TOOLS) <= set(tools):
                _say(f"FAILED: the server does not list the assistant's tools ({', '.join(_ASSISTANT_TOOLS)}).")
                return 1
            first = await _ask(client, FIRST_QUESTION, None)
            if first is None:
                return 1
            second = await _ask(client, FOLLOW_UP, first["session_id"])
            if second is None:
                return 1
            if second["session_id"] != first["session_id"]:
                _say("FAILED: the follow-up did not continue the same session.")
                return 1
    _say("Demo finished: both turns completed in one session.")
    return 0


async def _ask(client: Client, message: str, session_id: str | None) -> dict[str, Any] | None:
    _say()
    _say(f"> ask: {message}")
    arguments: dict[str, Any] = {"message": message} | ({"session_id": session_id} if session_id else {})
    result = await call_showing_progress(client, "ask", arguments, _write)
    structured = result.structured_content or {}
    if result.is_error or structured.get("status") != "completed":
        text = " ".join(getattr(block, "text", "") for block in result.content)
        _say(f"FAILED: ask returned {structured.get('status', 'an error')}: {text}")
        return None
    _say(f"< answer: {structured['answer']}")
    _say(f"  (session {structured['session_id']}, {structured['events_count']} events)")
    return structured
