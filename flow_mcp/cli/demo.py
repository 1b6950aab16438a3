"""``flow-mcp demo``: the whole path on a fresh machine, no account needed.

A sandbox in a background thread, ``flow-mcp serve`` launched as a real stdio subprocess, a real MCP
client: list the tools, ask the assistant to build a flow with streamed progress, a follow-up ask in the same
session, then list the published flows and run one that asks a question, which the client's user (here the demo
itself) answers inline through MCP elicitation.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.client.context import ClientRequestContext
from mcp_types import ElicitRequestParams, ElicitResult

from flow_mcp.cli.turns import call_showing_progress
from flow_mcp.sandbox import SandboxConfig, SandboxServer

FIRST_QUESTION = "Build a flow that answers customer questions from our help-center docs."
FOLLOW_UP = "Add a step that hands the conversation to a human when the customer is angry."
_ASSISTANT_TOOLS = ("ask", "create_session", "invoke", "poll_events")
ASKING_FLOW = "Meeting Scheduler"  # a sandbox flow that asks a question before it answers
RUN_MESSAGE = "Book a call with the sales team."
USERS_ANSWER = "Tuesday at 10:00"


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
        async with Client(server, elicitation_callback=_user_answers) as client:
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
            if not await _run_a_flow_that_asks(client):
                return 1
    _say("Demo finished: two assistant turns in one session, and a published flow run to its end with the")
    _say("user's answer given inline.")
    return 0


async def _user_answers(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
    # A host shows this to its user; the demo answers for them.
    _say(f"  ? the flow asks the user: {params.message}")
    _say(f"  ! the user answers: {USERS_ANSWER}")
    return ElicitResult(action="accept", content={"answer": USERS_ANSWER})


async def _run_a_flow_that_asks(client: Client) -> bool:
    _say()
    _say("> list_flows")
    listed = await client.call_tool("list_flows", {})
    flows = (listed.structured_content or {}).get("flows", [])
    for flow in flows:
        _say(f"  - {flow['name']}")
    flow_id = next((flow["flow_id"] for flow in flows if flow["name"] == ASKING_FLOW), None)
    if listed.is_error or flow_id is None:
        _say(f"FAILED: list_flows did not list the flow '{ASKING_FLOW}'.")
        return False
    _say()
    _say(f"> run_flow: {ASKING_FLOW}: {RUN_MESSAGE}")
    result = await call_showing_progress(client, "run_flow", {"flow_id": flow_id, "message": RUN_MESSAGE}, _write)
    structured = result.structured_content or {}
    if result.is_error or structured.get("status") != "completed":
        text = " ".join(getattr(block, "text", "") for block in result.content)
        _say(f"FAILED: run_flow returned {structured.get('status', 'an error')}: {text}")
        return False
    _say(f"< answer: {structured['answer']}")
    return True


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
