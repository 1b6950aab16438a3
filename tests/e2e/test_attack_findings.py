"""Findings of an outside review (branch `attack`): each test failed before the fixes and pins what must happen.

Seven tests are the review's (one adjusted, see its comment); the rest were written with the fixes. The
review's reproduction scripts (attack/) are in the history of branch `attack`.
Here the tests with real processes; the in-process ones: tests/integration/test_attack_findings.py.
"""

from __future__ import annotations

import subprocess
import sys

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from flow_mcp.sandbox import SandboxServer

from ..support.httpserver import HttpServer
from ..support.servers import server_env, text_of

pytestmark = pytest.mark.anyio


async def test_a_key_sent_by_a_client_that_is_not_plain_ascii_gets_a_clear_error(sandbox: SandboxServer) -> None:
    env = server_env(sandbox, FLOWHUNT_API_KEY="", FLOW_MCP_SECRET="handle-secret-9d2c7a4e1f6b3085")
    key = "fh-s\u00e9cret-KEYVALUE-123".encode()  # UTF-8 bytes, as a host that does not check sends them
    with HttpServer(env, "--flowhunt-key-from-client") as running:
        async with (
            httpx2.AsyncClient(headers={"X-FlowHunt-Api-Key": key}, timeout=30) as http,
            Client(streamable_http_client(f"{running.url}/mcp", http_client=http)) as client,
        ):
            refused = await client.call_tool("create_session", {})
        running.stop()
    assert refused.is_error and "X-FlowHunt-Api-Key" in text_of(refused) and "ASCII" in text_of(refused)
    assert not [line for line in running.logs() if line.get("event") == "tool_crashed"]


def test_flow_mcp_check_names_a_non_ascii_key_without_a_traceback_or_the_key() -> None:
    env = server_env(None, FLOWHUNT_API_KEY="fh-key-pasted-with-a-curly-quote\u2019")
    done = subprocess.run(
        [sys.executable, "-m", "flow_mcp", "check", "--dry-run"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 2 and "FLOWHUNT_API_KEY" in done.stderr and "ASCII" in done.stderr
    assert "Traceback" not in done.stderr and "curly-quote" not in done.stderr + done.stdout


def test_a_program_embedding_the_server_without_configuring_structlog_keeps_its_stdout_clean() -> None:
    # The embedding program writes its own protocol to stdout: tool failures logged by the server must not land there.
    script = """
import anyio, sys
from mcp import Client
from pydantic import SecretStr
from flow_mcp.config import Settings
from flow_mcp.server.app import build_server

async def main() -> None:
    settings = Settings(base_url="http://127.0.0.1:9", api_key=SecretStr("fh-embedded-0123456789"),
                        workspace_id="ws-1", max_retries=0, timeout=2)
    async with Client(build_server(settings)) as client:
        await client.call_tool("poll_events", {"session_id": "sess-1", "cursor": "not a cursor"})
        await client.call_tool("create_session", {})

anyio.run(main)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=server_env(None),
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
