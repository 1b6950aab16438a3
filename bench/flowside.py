"""flow_mcp's side: ``ask`` through a real ``flow-mcp serve`` stdio subprocess, and the same policy in-process.

A progress notification of ``ask`` is either one event's summary or one of two fixed texts ("Message sent…",
"Still working…"); the n-th event notification is the n-th event of the turn, since events are delivered oldest
first. Its receipt time in this process, minus the event's ``created_at_timestamp``, is the delivery latency.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import psutil
import structlog
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp_types import TextContent
from pydantic import SecretStr

from bench.common import API_KEY, GIVE_UP_S, WORKSPACE, clean_env, now_ms
from flow_mcp.config import Settings
from flow_mcp.flowhunt.client import FlowHuntClient
from flow_mcp.flowhunt.cursor import Cursor
from flow_mcp.flowhunt.follow import follow

NOT_EVENTS = ("Message sent", "Still working")


@dataclass
class Asked:
    """One ``ask`` as the MCP client saw it."""

    session_id: str = ""
    status: str = "error"
    progress: list[tuple[float, str]] = field(default_factory=list)
    done_ms: float | None = None
    error: str | None = None

    def event_receipts(self) -> list[float]:
        """Receipt times of the event notifications, in order (heartbeats and the first notice left out)."""
        return [at for at, text in self.progress if not text.startswith(NOT_EVENTS)]


@dataclass
class Server:
    """A running ``flow-mcp serve`` and the MCP client connected to it."""

    client: Client
    process: psutil.Process


@asynccontextmanager
async def flow_mcp_server(sandbox_url: str, log_path: Path, **env: str) -> AsyncIterator[Server]:
    """``python -m flow_mcp serve`` against the sandbox with default settings (plus ``env``), stderr to a file."""
    variables = clean_env(
        FLOWHUNT_BASE_URL=sandbox_url, FLOWHUNT_API_KEY=API_KEY, FLOWHUNT_WORKSPACE_ID=WORKSPACE, **env
    )
    params = StdioServerParameters(command=sys.executable, args=["-m", "flow_mcp", "serve"], env=variables)
    me = psutil.Process()
    before = {child.pid for child in me.children(recursive=True)}
    with log_path.open("a") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            spawned = [child for child in me.children(recursive=True) if child.pid not in before]
            serve = next(child for child in spawned if "flow_mcp" in " ".join(child.cmdline()))
            yield Server(client, serve)


async def ask(client: Client, message: str, delay: float) -> Asked:
    """One ``ask`` after ``delay`` seconds, with the same 300 s budget the reference loops have."""
    await anyio.sleep(delay)
    asked = Asked()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        asked.progress.append((now_ms(), message or ""))

    try:
        result = await client.call_tool(
            "ask", {"message": message, "timeout_seconds": GIVE_UP_S}, progress_callback=on_progress
        )
    except Exception as error:  # a failed ask is a figure, not a crash of the benchmark
        asked.error = f"{type(error).__name__}: {error}"
        return asked
    asked.done_ms = now_ms()
    content: dict[str, Any] = result.structured_content or {}
    asked.session_id = str(content.get("session_id", ""))
    asked.status = str(content.get("status", "error"))
    if result.is_error:
        asked.error = next((c.text for c in result.content if isinstance(c, TextContent)), "tool error")[:300]
    return asked


@dataclass
class Followed:
    """One turn whose receiver noted when each event (by ``event_id``) reached it: followed in-process with
    flow_mcp's own client and poller, or (``bench.chain``) through a chain of poll_events calls."""

    session_id: str = ""
    receipts: dict[str, float] = field(default_factory=dict)
    done_ms: float | None = None
    status: str = "error"


def log_like_the_server(path: Path) -> None:
    """Send this process's flow_mcp logs (the direct loop's) to a file as JSON lines at info, as ``serve`` does."""
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        logger_factory=structlog.WriteLoggerFactory(file=path.open("a")),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=True,
    )


def direct_settings(sandbox_url: str) -> Settings:
    """The Settings a ``flow-mcp serve`` with no FLOW_MCP_* variables would use, pointed at the sandbox."""
    values: dict[str, Any] = {"base_url": sandbox_url, "api_key": SecretStr(API_KEY), "workspace_id": WORKSPACE}
    return Settings(**values)


async def direct_turn(client: FlowHuntClient, settings: Settings, message: str, delay: float) -> Followed:
    """create + invoke + ``follow(until="turn_end")``: what ``ask`` does, minus MCP."""
    await anyio.sleep(delay)
    turn = Followed()
    turn.session_id = (await client.create_session()).session_id
    invocation = await client.invoke(turn.session_id, message)

    async def on_events(events: Any, _: Cursor) -> None:
        received = now_ms()
        for event in events:
            turn.receipts.setdefault(event.event_id, received)

    cursor = await follow(
        client,
        turn.session_id,
        Cursor(timestamp=int(invocation.created_at)),
        settings=settings,
        deadline=time.monotonic() + GIVE_UP_S,
        until="turn_end",
        on_events=on_events,
    )
    turn.done_ms = now_ms()
    turn.status = cursor.progress.outcome or "running"
    return turn
