"""Published flows as tools of their own (FLOW_MCP_FLOW_TOOLS), through real MCP clients against the sandbox:
in memory, a stdio subprocess and a streamable-HTTP server, on both protocol generations.
Here the tests with real processes; the in-process ones: tests/integration/test_flow_tools.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from flow_mcp.sandbox import DEFAULT_FLOWS, SandboxServer

from ..integration.test_flow_tools import (
    CORE,
    MODES,
    Changes,
    body_of,
    flow_tools,
    publish,
    text_of,
    told_of_a_change,
    tools_of,
)
from ..support.httpserver import HttpServer, auth_headers, http_client
from ..support.servers import server_env, teed_server

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", MODES)
async def test_a_stdio_host_gets_flow_tools_and_hears_list_changed_with_stdout_only_json_rpc(
    sandbox: SandboxServer, tmp_path: Path, mode: str
) -> None:
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    env = server_env(sandbox, FLOW_MCP_FLOW_TOOLS="faq*,fresh*", FLOW_MCP_FLOW_TOOLS_TTL="1")
    changes = Changes()
    with anyio.fail_after(60):
        async with Client(teed_server(env, out, err), mode=mode, message_handler=changes) as client:
            assert flow_tools(await tools_of(client)) == {"flow_faq_bot_en"}
            assert body_of(await client.call_tool("flow_faq_bot_en", {"message": "hi"}))["status"] == "completed"
            async with told_of_a_change(client, changes):
                await publish(sandbox, {"name": "Fresh Flow"})
            assert flow_tools(await tools_of(client)) == {"flow_faq_bot_en", "flow_fresh_flow"}
    lines = out.read_text("utf-8").splitlines()
    assert lines and all(json.loads(line)["jsonrpc"] == "2.0" for line in lines)


TEAM_KEY = "fh-team-key-alpha-5c1e9b7d3a"


HANDLE_SECRET = "handle-secret-9d2c7a4e1f6b3085"


async def test_over_http_with_client_keys_each_client_sees_its_own_workspaces_flows(sandbox: SandboxServer) -> None:
    sandbox.config.update({"team_keys": f"{TEAM_KEY}=ws-alpha"})
    await publish(sandbox, {"id": "alpha-flow", "name": "Alpha Only", "workspace_id": "ws-alpha"})
    env = server_env(sandbox, FLOWHUNT_API_KEY="", FLOW_MCP_SECRET=HANDLE_SECRET, FLOW_MCP_FLOW_TOOLS="all")
    with HttpServer(env, "--flowhunt-key-from-client") as server:
        async with (
            http_client(server.url, key=TEAM_KEY) as alpha,
            http_client(server.url, key=sandbox.config.api_key) as main,
            http_client(server.url) as keyless,
        ):
            assert flow_tools(await tools_of(alpha)) == {"flow_alpha_only"}
            assert len(flow_tools(await tools_of(main))) == len(DEFAULT_FLOWS)
            assert set(await tools_of(keyless)) == CORE  # no key, no workspace: the core tools only
            ran = body_of(await alpha.call_tool("flow_alpha_only", {"message": "hi"}))
            assert ran["status"] == "completed"
            foreign = await main.call_tool("flow_alpha_only", {"message": "hi"})
            assert foreign.is_error and "list_flows" in text_of(foreign)
        _, stdout = server.stop()
    assert stdout == "" and TEAM_KEY not in server.stderr and sandbox.config.api_key not in server.stderr


@pytest.mark.parametrize("mode", MODES)
async def test_an_http_client_hears_list_changed_when_a_flow_is_published(sandbox: SandboxServer, mode: str) -> None:
    env = server_env(sandbox, FLOW_MCP_FLOW_TOOLS="all", FLOW_MCP_FLOW_TOOLS_TTL="1")
    changes = Changes()
    with HttpServer(env) as server:
        async with (
            httpx2.AsyncClient(headers=auth_headers(), timeout=httpx2.Timeout(30, read=300)) as http,
            Client(
                streamable_http_client(f"{server.url}/mcp", http_client=http), mode=mode, message_handler=changes
            ) as client,
        ):
            assert len(flow_tools(await tools_of(client))) == len(DEFAULT_FLOWS)
            async with told_of_a_change(client, changes):
                await publish(sandbox, {"name": "Fresh Flow"})
            assert "flow_fresh_flow" in await tools_of(client)
