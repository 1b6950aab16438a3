"""What a ``flow-mcp serve`` process loads before its first tool call: only what initialize and tools/list need.

An MCP host waits for the start of the stdio server before it can show any tool (docs/performance.md, "Start
time"). Most of that wait is the MCP SDK's own import; these tests keep the rest from creeping back, without
timing anything: they read the server's own record of its imports (PYTHONPROFILEIMPORTTIME, the environment's
``python -X importtime``) once tools/list has been answered.
"""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import pytest
from mcp import Client

from flow_mcp.sandbox import SandboxServer

from ..support.servers import server_env, teed_server, text_of

pytestmark = pytest.mark.anyio

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens on loopback's discard port
NOT_BEFORE_THE_FIRST_CALL = (
    "flow_mcp.sandbox",  # the simulator: with --sandbox only
    "flow_mcp.server.http",  # the HTTP face: with --transport http only
    "flow_mcp.server.guards",
    "flow_mcp.cli.check",  # the other commands
    "flow_mcp.cli.demo",
    "flow_mcp.cli.turns",
    "httpcore2",  # the FlowHunt client's HTTP/TLS pool: made by its first request
    "matplotlib",  # the benchmark's, never the server's
    "psutil",
)
_IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$", re.MULTILINE)


def imported(stderr_file: Path) -> set[str]:
    """The modules the server had imported, from its -X importtime lines (written to stderr as each one loads)."""
    return set(_IMPORTED.findall(stderr_file.read_text("utf-8", errors="replace")))


def among(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


async def test_the_stdio_server_lists_its_tools_without_loading_the_http_face_sandbox_or_tls(tmp_path: Path) -> None:
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    env = server_env(None, FLOWHUNT_BASE_URL=UNREACHABLE, FLOWHUNT_API_KEY="fh-dummy", PYTHONPROFILEIMPORTTIME="1")
    with anyio.fail_after(60):
        async with Client(teed_server(env, out, err)) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            modules = imported(err)
    assert "ask" in tools and "run_flow" in tools
    assert {"mcp", "flow_mcp.server.app", "flow_mcp.flowhunt.client"} <= modules  # the record is read right
    assert among(modules, NOT_BEFORE_THE_FIRST_CALL) == []


async def test_the_first_call_loads_the_http_pool_and_works(sandbox: SandboxServer, tmp_path: Path) -> None:
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    env = server_env(sandbox, PYTHONPROFILEIMPORTTIME="1")
    with anyio.fail_after(60):
        async with Client(teed_server(env, out, err)) as client:
            await client.list_tools()
            assert among(imported(err), ("httpcore2",)) == []
            result = await client.call_tool("ask", {"message": "hello"})
            modules = imported(err)
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None and result.structured_content["status"] == "completed"
    assert "httpcore2" in modules
