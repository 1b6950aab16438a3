"""``flow-mcp serve --transport http``: real server processes on loopback, reached with the SDK's HTTP client."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from flow_mcp.sandbox import SandboxServer
from flow_mcp.server.callers import SessionHandles, SessionRef, handle_key

from ..support.httpserver import HttpServer, Replicas, auth_headers, http_client
from ..support.servers import ROOT, server_env, text_of

pytestmark = pytest.mark.anyio

ALICE = "alice-token-7f3a9c2e5b1d4f60"
BOB = "bob-token-0c8e6a4f2d9b7e51"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
EVERYWHERE = "0.0.0.0"  # noqa: S104 -- the refusal to serve every interface without tokens is under test
SESSIONS = "/v3/flow-assistants"
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


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
    _, stdout = server.stop()
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
    # The session id a client sees is a handle bound to it, FlowHunt's id encrypted inside.
    assert re.fullmatch(r"[A-Za-z0-9_-]{44}", result.structured_content["session_id"])
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
        invoked = [e["path"] for e in sandbox.state.request_log() if e["path"].endswith("/invoke")]
        assert len(invoked) == 1  # Alice's own message
        session_id = invoked[0].removeprefix(f"{SESSIONS}/").removesuffix("/invoke")
        invokes = 1
        made_up = handle[::-1]
        # A handle that is Bob's own, for a session FlowHunt does not know: what "unknown" looks like to Bob.
        unknown_to_flowhunt = SessionHandles(handle_key(sandbox.config.api_key), "bob").seal(
            SessionRef(str(uuid.uuid4()))
        )
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
                        unknown = await bob.call_tool(tool, {**arguments, "session_id": unknown_to_flowhunt})
                        assert unknown.is_error
                        assert text_of(refused).replace(handle, "S") == text_of(unknown).replace(
                            unknown_to_flowhunt, "S"
                        )
            for target in (handle, made_up):
                with pytest.raises(MCPError) as unreadable:
                    await bob.read_resource(f"flowhunt://sessions/{target}/transcript")
                reads.append(unreadable.value.error.message.replace(target, "S"))
            assert reads[0] == reads[1]
        assert (
            sum(1 for entry in sandbox.state.request_log() if entry["path"] == f"{SESSIONS}/{session_id}/invoke")
            == invokes
        )
        still_hers = await alice.call_tool("poll_events", {"session_id": handle, "cursor": "0"})
        assert not still_hers.is_error and still_hers.structured_content is not None
        assert still_hers.structured_content["events"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_stateless_replicas_serve_one_client_interchangeably(
    sandbox: SandboxServer, tokens_file: Path, mode: str
) -> None:
    env = server_env(sandbox, FLOW_MCP_TOKENS_FILE=str(tokens_file))
    with HttpServer(env, "--stateless") as a, HttpServer(env, "--stateless") as b:
        replicas = Replicas(a.url, b.url)
        async with http_client(a.url, token=ALICE, mode=mode, transport=replicas) as client:
            replicas.target = 0
            created = await client.call_tool("create_session", {})
            assert created.structured_content is not None
            handle = created.structured_content["session_id"]
            replicas.target = 1
            asked = await client.call_tool("ask", {"session_id": handle, "message": "Build an FAQ bot"})
            assert not asked.is_error, text_of(asked)
            assert asked.structured_content is not None and asked.structured_content["status"] == "completed"
            replicas.target = 0
            after = await client.call_tool(
                "poll_events", {"session_id": handle, "cursor": asked.structured_content["cursor"]}
            )
            replay = await client.call_tool("poll_events", {"session_id": handle, "cursor": "0"})
        assert {0, 1} <= set(replicas.served)
        assert after.structured_content is not None and after.structured_content["events"] == []  # nothing doubled
        assert replay.structured_content is not None
        ids = [event["event_id"] for event in replay.structured_content["events"]]
        assert len(ids) == len(set(ids))
        # The turn B followed is, event for event, the session A replays.
        assert len(ids) == asked.structured_content["events_count"]
        assert asked.structured_content["answer"] in [e["text"] for e in replay.structured_content["events"]]


async def test_a_restarted_server_honours_the_session_handles_it_gave_out(
    sandbox: SandboxServer, tokens_file: Path
) -> None:
    env = server_env(sandbox, FLOW_MCP_TOKENS_FILE=str(tokens_file))
    with HttpServer(env) as before:
        async with http_client(before.url, token=ALICE) as alice:
            asked = await alice.call_tool("ask", {"message": "Build an FAQ bot"})
    assert asked.structured_content is not None
    handle = asked.structured_content["session_id"]
    with HttpServer(env) as after:
        async with http_client(after.url, token=ALICE) as alice:
            replay = await alice.call_tool("poll_events", {"session_id": handle, "cursor": "0"})
        async with http_client(after.url, token=BOB) as bob:
            refused = await bob.call_tool("poll_events", {"session_id": handle, "cursor": "0"})
    assert not replay.is_error and replay.structured_content is not None
    assert asked.structured_content["answer"] in [e["text"] for e in replay.structured_content["events"]]
    assert refused.is_error


TEAM_KEY = "fh-team-key-alpha-5c1e9b7d3a"
HANDLE_SECRET = "handle-secret-9d2c7a4e1f6b3085"


async def test_each_client_brings_its_own_flowhunt_key_and_no_key_is_logged(sandbox: SandboxServer) -> None:
    main_key = sandbox.config.api_key
    sandbox.config.update({"team_keys": f"{TEAM_KEY}=ws-alpha"})
    env = server_env(sandbox, FLOWHUNT_API_KEY="", FLOW_MCP_LOG_LEVEL="debug", FLOW_MCP_SECRET=HANDLE_SECRET)
    with HttpServer(env, "--flowhunt-key-from-client") as server:
        async with http_client(server.url, key=TEAM_KEY) as alpha, http_client(server.url, key=main_key) as main:
            created = await alpha.call_tool("create_session", {})
            assert created.structured_content is not None
            # Workspace discovery is per key: each key finds its own.
            assert created.structured_content["workspace_id"] == "ws-alpha"
            asked = await alpha.call_tool(
                "ask", {"message": "hello", "session_id": created.structured_content["session_id"]}
            )
            assert not asked.is_error and asked.structured_content is not None
            assert asked.structured_content["status"] == "completed"
            other = await main.call_tool("create_session", {})
            assert other.structured_content is not None and other.structured_content["workspace_id"] == "ws-sandbox"
            # Same server, same (absent) bearer token, another FlowHunt key: not the same client.
            foreign = await main.call_tool(
                "poll_events", {"session_id": asked.structured_content["session_id"], "cursor": "0"}
            )
            assert foreign.is_error and "Unknown session" in text_of(foreign)
        async with http_client(server.url) as keyless, http_client(server.url, key="fh-wrong-key-0000000000") as wrong:
            missing = await keyless.call_tool("ask", {"message": "hello"})
            assert missing.is_error and "X-FlowHunt-Api-Key" in text_of(missing)
            rejected = await wrong.call_tool("ask", {"message": "hello"})
            assert rejected.is_error and "X-FlowHunt-Api-Key" in text_of(rejected) and "401" in text_of(rejected)
        _, stdout = server.stop()
    assert stdout == ""
    assert any(line.get("event") == "flowhunt_request" for line in server.logs())  # debug lines were written
    for key in (TEAM_KEY, main_key, "fh-wrong-key-0000000000", HANDLE_SECRET):
        assert key not in server.stderr


def test_serving_beyond_loopback_without_tokens_is_refused_unless_no_auth_is_explicit(sandbox: SandboxServer) -> None:
    env = server_env(sandbox)
    refused = subprocess.run(
        [sys.executable, "-m", "flow_mcp", "serve", "--transport", "http", "--host", EVERYWHERE, "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "FLOW_MCP_TOKENS_FILE" in refused.stderr and "--no-auth" in refused.stderr
    with HttpServer(env, "--host", EVERYWHERE, "--no-auth") as server:
        assert any(line.get("event") == "authentication_off" for line in server.logs())


async def ask_and_stop(server: HttpServer, message: str, mode: str = "auto") -> tuple[dict[str, Any], list[str | None]]:
    """Run ``ask``, and send the server SIGTERM as soon as the assistant is at work."""
    seen: list[str | None] = []
    working = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)
        if message and "run_flow" in message:
            working.set()

    async def stop_when_working() -> None:
        await working.wait()
        server.send()

    async with http_client(server.url, mode=mode) as client, anyio.create_task_group() as tasks:
        # The SDK client lists the tools to check a result against its schema: do it while the server is up.
        await client.list_tools()
        tasks.start_soon(stop_when_working)
        with anyio.fail_after(60):
            result = await client.call_tool("ask", {"message": message}, progress_callback=on_progress)
        tasks.cancel_scope.cancel()
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return result.structured_content, seen


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_sigterm_during_ask_lets_the_turn_finish_and_the_answer_arrive(sandbox: SandboxServer, mode: str) -> None:
    sandbox.config.update({"pacing": 0.5})  # a 2 s tool call: the signal lands mid-turn
    with HttpServer(server_env(sandbox)) as server:
        asked, seen = await ask_and_stop(server, "run the slow tool", mode)
        _, stdout = server.stop()
    assert asked["status"] == "completed" and asked["answer"]
    assert "Answer ready" in seen
    assert any(line.get("event") == "server_stopping" for line in server.logs())
    assert stdout == ""


async def test_a_turn_outlasting_the_grace_period_returns_running_and_continues_elsewhere(
    sandbox: SandboxServer,
) -> None:
    sandbox.config.update({"pacing": 1.0})  # a 4 s tool call against a 0.5 s grace period
    env = server_env(sandbox, FLOW_MCP_SHUTDOWN_GRACE="0.5")
    with HttpServer(env) as stopping:
        asked, _ = await ask_and_stop(stopping, "run the slow tool")
        stopping.stop()
    assert asked["status"] == "running" and asked["cursor"]
    assert any(line.get("event") == "grace_period_over" for line in stopping.logs())
    with HttpServer(env) as other:
        async with http_client(other.url) as client:
            status, cursor, later = "running", asked["cursor"], []
            with anyio.fail_after(60):
                while status == "running":
                    polled = await client.call_tool(
                        "poll_events", {"session_id": asked["session_id"], "cursor": cursor, "wait_seconds": 10}
                    )
                    assert polled.structured_content is not None, text_of(polled)
                    status, cursor = polled.structured_content["status"], polled.structured_content["cursor"]
                    later += polled.structured_content["events"]
            replay = await client.call_tool("poll_events", {"session_id": asked["session_id"], "cursor": "0"})
    assert status == "completed"
    assert replay.structured_content is not None
    # What the cut ask saw plus what the other server delivered afterwards is the whole session, once.
    assert asked["events_count"] + len(later) == len(replay.structured_content["events"])
    assert {e["event_id"] for e in later} <= {e["event_id"] for e in replay.structured_content["events"]}


HTTP_EXAMPLES = ROOT / "examples" / "http"


def example_connections() -> list[tuple[str, str, dict[str, str]]]:
    """(where, url, headers) of every client config in examples/http, as shipped."""
    found = []
    for path in sorted(HTTP_EXAMPLES.glob("*.json")):
        config = json.loads(path.read_text("utf-8"))
        for name, entry in config.get("mcpServers", config.get("servers", {})).items():
            found.append((f"{path.name}:{name}", entry["url"], entry["headers"]))
    for line in (HTTP_EXAMPLES / "claude_code.sh").read_text("utf-8").splitlines():
        if line.startswith("claude "):
            words = shlex.split(line)
            headers = dict(words[i + 1].split(": ", 1) for i, w in enumerate(words) if w == "--header")
            found.append((f"claude_code.sh:{words[5]}", words[6], headers))
    return found


async def test_the_http_examples_connect_as_shipped(sandbox: SandboxServer, tokens_file: Path) -> None:
    placeholders = {"${input:flow-mcp-token}": ALICE, "your-flow-mcp-token": ALICE}
    placeholders["your-flowhunt-api-key"] = sandbox.config.api_key
    env = server_env(sandbox, FLOW_MCP_TOKENS_FILE=str(tokens_file), FLOW_MCP_SECRET=HANDLE_SECRET)
    connections = example_connections()
    assert len(connections) == 5
    with HttpServer(env) as shared, HttpServer(env, "--flowhunt-key-from-client") as own_key:
        for where, url, headers in connections:
            server = own_key if "X-FlowHunt-Api-Key" in headers else shared
            assert url == "http://127.0.0.1:8000/mcp", where  # the default bind, port and path
            for placeholder, value in placeholders.items():
                headers = {k: v.replace(placeholder, value) for k, v in headers.items()}
            async with (
                httpx2.AsyncClient(headers=headers, timeout=30) as http,
                Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client,
            ):
                created = await client.call_tool("create_session", {})
                assert not created.is_error, f"{where}: {text_of(created)}"


def test_the_example_tokens_file_is_refused_until_real_tokens_are_in(sandbox: SandboxServer) -> None:
    env = server_env(sandbox, FLOW_MCP_TOKENS_FILE=str(HTTP_EXAMPLES / "tokens.example"))
    done = subprocess.run(
        [sys.executable, "-m", "flow_mcp", "serve", "--transport", "http", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "line 5" in done.stderr
