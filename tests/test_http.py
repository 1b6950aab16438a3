"""``flow-mcp serve --transport http``: real server processes on loopback, reached with the SDK's HTTP client."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from flow_mcp.sandbox import SandboxServer

from .conftest import server_env
from .httpserver import HttpServer, Replicas, auth_headers, http_client

pytestmark = pytest.mark.anyio

ALICE = "alice-token-7f3a9c2e5b1d4f60"
BOB = "bob-token-0c8e6a4f2d9b7e51"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    # Bob's line stores only the hash of his token.
    path = tmp_path / "tokens"
    path.write_text(f"# team\nalice:{ALICE}\nbob:sha256:{hashlib.sha256(BOB.encode()).hexdigest()}\n")
    return path


@pytest.fixture
def team_server(sandbox: SandboxServer, tokens_file: Path) -> Iterator[HttpServer]:
    server = HttpServer(server_env(sandbox, FLOW_MCP_TOKENS_FILE=str(tokens_file))).start()
    yield server
    code, stdout = server.stop()
    assert stdout == ""  # stdout is never the server's to write, on any transport


async def post(url: str, body: object, **headers: str) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=10) as http:
        return await http.post(f"{url}/mcp", json=body, headers={**MCP_HEADERS, **headers})


async def test_healthz_answers_without_a_token_and_without_calling_flowhunt(
    team_server: HttpServer, sandbox: SandboxServer
) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.get(f"{team_server.url}/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert sandbox.state.request_log() == []


async def test_a_request_without_a_valid_token_gets_401_with_a_bearer_challenge(team_server: HttpServer) -> None:
    for headers in ({}, auth_headers("not-a-token-of-this-server"), {"Authorization": f"Basic {ALICE}"}):
        response = await post(team_server.url, INITIALIZE, **headers)
        assert response.status_code == 401
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    assert (await post(team_server.url, INITIALIZE, **auth_headers(ALICE))).status_code == 200


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_ask_over_http_streams_progress_and_returns_the_answer(team_server: HttpServer, mode: str) -> None:
    seen: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    async with http_client(team_server.url, token=ALICE, mode=mode) as client:
        result = await client.call_tool("ask", {"message": "Build an FAQ bot"}, progress_callback=on_progress)
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    assert result.structured_content["status"] == "completed" and result.structured_content["answer"]
    assert "Answer ready" in seen
    # The session id a client sees is a handle bound to it, with FlowHunt's id inside.
    assert re.fullmatch(r"[0-9a-f-]{36}\.[A-Za-z0-9_-]{22}", result.structured_content["session_id"])
    assert any(line.get("client") == "alice" for line in team_server.logs())


async def test_a_foreign_host_or_origin_is_refused(team_server: HttpServer) -> None:
    token = auth_headers(ALICE)
    assert (await post(team_server.url, INITIALIZE, **token, Host="attacker.example:8000")).status_code == 421
    assert (await post(team_server.url, INITIALIZE, **token, Origin="https://attacker.example")).status_code == 403
    port = httpx2.URL(team_server.url).port
    assert (await post(team_server.url, INITIALIZE, **token, Host=f"localhost:{port}")).status_code == 200


async def test_allowed_host_admits_the_name_behind_a_reverse_proxy(sandbox: SandboxServer, tokens_file: Path) -> None:
    env = server_env(sandbox, FLOW_MCP_TOKENS_FILE=str(tokens_file))
    with HttpServer(env, "--allowed-host", "mcp.example.com") as server:
        token = auth_headers(ALICE)
        assert (await post(server.url, INITIALIZE, **token, Host="mcp.example.com")).status_code == 200
        assert (await post(server.url, INITIALIZE, **token, Host="mcp.example.com:8443")).status_code == 200
        assert (await post(server.url, INITIALIZE, **token, Host="other.example.com")).status_code == 421


async def test_a_client_cannot_use_a_session_another_client_created(
    team_server: HttpServer, sandbox: SandboxServer
) -> None:
    async with http_client(team_server.url, token=ALICE) as alice:
        asked = await alice.call_tool("ask", {"message": "Build an FAQ bot"})
        assert asked.structured_content is not None
        handle = asked.structured_content["session_id"]
        cursor = asked.structured_content["cursor"]
        invokes = sum(1 for entry in sandbox.state.request_log() if entry["path"].endswith("/invoke"))
        session_id = handle.partition(".")[0]
        made_up = session_id[::-1] + "." + handle.partition(".")[2]
        reads: list[str] = []
        async with http_client(team_server.url, token=BOB) as bob:
            for target in (handle, session_id, made_up):
                calls: list[tuple[str, dict[str, Any]]] = [
                    ("poll_events", {"session_id": target, "cursor": cursor}),
                    ("invoke", {"session_id": target, "message": "delete everything"}),
                    ("ask", {"session_id": target, "message": "delete everything"}),
                ]
                for tool, arguments in calls:
                    refused = await bob.call_tool(tool, arguments)
                    assert refused.is_error
                    if target == handle:
                        # Exactly what an unknown session gets: nothing tells Bob that Alice's session exists.
                        unknown = await bob.call_tool(tool, {**arguments, "session_id": made_up})
                        assert text_of(refused).replace(handle, "S") == text_of(unknown).replace(made_up, "S")
            for target in (handle, made_up):
                with pytest.raises(MCPError) as unreadable:
                    await bob.read_resource(f"flowhunt://sessions/{target}/transcript")
                reads.append(unreadable.value.error.message.replace(target, "S"))
            assert reads[0] == reads[1]
        assert sum(1 for entry in sandbox.state.request_log() if entry["path"].endswith("/invoke")) == invokes
        still_hers = await alice.call_tool("poll_events", {"session_id": handle, "cursor": "0"})
        assert not still_hers.is_error and still_hers.structured_content is not None
        assert still_hers.structured_content["events"]
