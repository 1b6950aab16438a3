"""Terminal commands that go through the MCP server in process: ``ask``, ``flows`` and ``run``.

Each builds the server, connects an MCP client to it in memory and calls a tool, so a terminal gets exactly what
an MCP host gets. Progress goes to stderr as it comes, the result's text to stdout (stderr for an error).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from mcp import Client
from mcp_types import CallToolResult

from flow_mcp.config import Settings
from flow_mcp.flowhunt.client import SESSION_ID_PATTERN
from flow_mcp.server.app import build_server

Write = Callable[[str], object]
_MOST_FLOWS = 200  # list_flows' own limit
_NAME_COLUMN = 40


async def call_showing_progress(client: Client, tool: str, arguments: dict[str, Any], write: Write) -> CallToolResult:
    """Call ``tool`` through ``client``, writing each progress message as a line as it comes."""

    async def show(progress: float, total: float | None, message: str | None) -> None:
        write(f"  … {message}\n")

    return await client.call_tool(tool, arguments, progress_callback=show)


async def ask_once(settings: Settings, message: str, session_id: str | None) -> int:
    """``flow-mcp ask``: one turn with the Flow Assistant; the exit code says how it went."""
    arguments: dict[str, Any] = {"message": message}
    if session_id:
        arguments["session_id"] = session_id
    async with Client(build_server(settings)) as client:
        return await _show_turn(client, "ask", arguments)


async def list_flows(settings: Settings, query: str | None) -> int:
    """``flow-mcp flows``: the published flows (matching ``query``), a line each: name, flow id, input hint."""
    arguments: dict[str, Any] = {"limit": _MOST_FLOWS} | ({"query": query} if query else {})
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("list_flows", arguments)
    if result.is_error:
        sys.stderr.write(_text(result) + "\n")
        return 1
    body = result.structured_content or {}
    flows: list[dict[str, Any]] = body.get("flows", [])
    width = min(max((len(flow["name"]) for flow in flows), default=0), _NAME_COLUMN)
    for flow in flows:
        sys.stdout.write(f"{flow['name']:<{width}}  {flow['flow_id']}  {flow.get('input_hint') or ''}".rstrip() + "\n")
    if not flows:
        sys.stderr.write(
            f"No published flow matches {query!r}.\n" if query else "The workspace has no published flows.\n"
        )
    elif body.get("more"):
        sys.stderr.write(f"More than {len(flows)} flows match: narrow the query.\n")
    return 0


async def run_flow(
    settings: Settings, flow: str, message: str, session_id: str | None, variables: dict[str, str]
) -> int:
    """``flow-mcp run``: one turn of the flow ``flow`` (its id or its exact name); the exit code says how it went."""
    async with Client(build_server(settings)) as client:
        flow_id = await _flow_id(client, flow)
        if flow_id is None:
            return 1
        arguments: dict[str, Any] = {"flow_id": flow_id, "message": message}
        if session_id:
            arguments["session_id"] = session_id
        if variables:
            arguments["variables"] = variables
        return await _show_turn(client, "run_flow", arguments)


async def _flow_id(client: Client, flow: str) -> str | None:
    """The id of the flow named ``flow`` (exactly, else ignoring case), or ``flow`` itself taken as an id."""
    listed = await client.call_tool("list_flows", {"query": flow, "limit": _MOST_FLOWS})
    if listed.is_error:
        sys.stderr.write(_text(listed) + "\n")
        return None
    flows: list[dict[str, Any]] = (listed.structured_content or {}).get("flows", [])
    named = [f for f in flows if f["name"] == flow] or [f for f in flows if f["name"].casefold() == flow.casefold()]
    if len(named) > 1:
        ids = ", ".join(f["flow_id"] for f in named)
        sys.stderr.write(f"Several flows are named {flow!r} ({ids}): pass the id of the one to run.\n")
        return None
    if named:
        return str(named[0]["flow_id"])
    if not SESSION_ID_PATTERN.fullmatch(flow):
        sys.stderr.write(f"No published flow is named {flow!r}: `flow-mcp flows` lists them, with their ids.\n")
        return None
    return flow  # not a name, so an id: run_flow says so if no flow has it


async def _show_turn(client: Client, tool: str, arguments: dict[str, Any]) -> int:
    """Run a whole-turn tool with live progress; print its text; 0 unless it failed."""
    result = await call_showing_progress(client, tool, arguments, sys.stderr.write)
    (sys.stderr if result.is_error else sys.stdout).write(_text(result) + "\n")
    if result.is_error:
        return 1
    status = (result.structured_content or {}).get("status")
    return 0 if status in ("completed", "waiting_for_input", "running") else 1


def _text(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)
