"""A shared HTTP server against clients that misbehave: forged handles, session floods, slowloris, DNS rebinding,
odd tokens files, a body dripped through a shutdown and a trailing slash. Real ``flow-mcp`` processes on loopback."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from anyio.abc import SocketStream

from flow_mcp.errors import ConfigurationError
from flow_mcp.sandbox import SandboxServer
from flow_mcp.server.callers import HANDLE_PATTERN, SessionHandles, SessionRef, handle_key
from flow_mcp.server.guards import MAX_SESSIONS_PER_CLIENT
from flow_mcp.server.http import TokenTable

from ..support.httpserver import HttpServer, auth_headers, http_client
from ..support.servers import server_env

pytestmark = pytest.mark.anyio

ALICE = "alice-token-7f3a9c2e5b1d4f60"
BOB = "bob-token-0c8e6a4f2d9b7e51"
SECRET = "handle-secret-4b8e1f6a9c2d7e30"
INVOKE = "/v3/flow-assistants/{}/invoke"
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def sessions_invoked(sandbox: SandboxServer) -> list[str]:
    """FlowHunt session ids that got a message, in order (the sandbox's request log)."""
    prefix, suffix = INVOKE.split("{}")
    paths = [entry["path"] for entry in sandbox.state.request_log()]
    return [p[len(prefix) : -len(suffix)] for p in paths if p.startswith(prefix) and p.endswith(suffix)]


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"alice:{ALICE}\nbob:{BOB}\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def team_server(sandbox: SandboxServer, tokens_file: Path) -> Iterator[HttpServer]:
    with HttpServer(server_env(sandbox, FLOW_MCP_TOKENS_FILE=str(tokens_file))) as server:
        yield server


async def post(url: str, body: object, *, path: str = "/mcp", **headers: str) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=10) as http:
        return await http.post(f"{url}{path}", json=body, headers={**MCP_HEADERS, **headers})


# -- session handles --------------------------------------------------------------------------------------


async def test_a_handle_does_not_reveal_the_flowhunt_session_id(
    team_server: HttpServer, sandbox: SandboxServer
) -> None:
    async with http_client(team_server.url, token=ALICE) as alice:
        asked = await alice.call_tool("ask", {"message": "Build an FAQ bot"})
    assert asked.structured_content is not None
    handle = asked.structured_content["session_id"]
    (session_id,) = sessions_invoked(sandbox)
    assert session_id not in handle and session_id.replace("-", "") not in handle
    assert HANDLE_PATTERN.fullmatch(handle) and len(handle) <= 64
    assert session_id not in text_of(asked)


async def test_a_client_who_learns_a_flowhunt_session_id_cannot_make_a_handle_for_it(sandbox: SandboxServer) -> None:
    team_key = "fh-team-key-alpha-5c1e9b7d3a"
    sandbox.config.update({"team_keys": f"{team_key}=ws-alpha"})
    env = server_env(sandbox, FLOWHUNT_API_KEY="", FLOW_MCP_SECRET=SECRET)
    with HttpServer(env, "--flowhunt-key-from-client") as server:
        async with http_client(server.url, key=sandbox.config.api_key) as alice:
            asked = await alice.call_tool("ask", {"message": "Build an FAQ bot"})
            assert asked.structured_content is not None
            handle = asked.structured_content["session_id"]
        (session_id,) = sessions_invoked(sandbox)
        touched = sum(session_id in entry["path"] for entry in sandbox.state.request_log())
        # What Bob could compute from what he holds: his own FlowHunt key and his identity on this server.
        own_identity = f"anonymous\0{hashlib.sha256(team_key.encode()).hexdigest()}"
        minted = SessionHandles(handle_key(team_key), own_identity).seal(SessionRef(session_id))
        unknown = SessionHandles(handle_key(SECRET), "someone else").seal(SessionRef(session_id))
        async with http_client(server.url, key=team_key) as bob:
            texts = {}
            for target in (handle, session_id, minted, unknown):
                refused = await bob.call_tool("poll_events", {"session_id": target, "cursor": "0"})
                assert refused.is_error
                texts[target] = text_of(refused).replace(target, "S")
        assert len(set(texts.values())) == 1  # each is "unknown session", word for word
        # None of it reached FlowHunt: Alice's session saw no request from Bob.
        assert sum(session_id in entry["path"] for entry in sandbox.state.request_log()) == touched


def test_flowhunt_key_from_client_without_a_secret_refuses_to_start(sandbox: SandboxServer) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flow_mcp", "serve", "--transport", "http", "--port", "0", "--flowhunt-key-from-client"],
        env=server_env(sandbox, FLOWHUNT_API_KEY=""),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "FLOW_MCP_SECRET" in done.stderr and "secrets.token_urlsafe" in done.stderr
    assert done.stdout == ""


# -- sessions per client ------------------------------------------------------------------------------------


async def open_session(url: str, **headers: str) -> httpx2.Response:
    return await post(url, INITIALIZE, **headers)


async def test_one_client_cannot_fill_the_session_table_and_others_still_get_in(team_server: HttpServer) -> None:
    alice, bob = auth_headers(ALICE), auth_headers(BOB)
    opened = [await open_session(team_server.url, **alice) for _ in range(MAX_SESSIONS_PER_CLIENT)]
    assert all(r.status_code == 200 and r.headers.get("mcp-session-id") for r in opened)
    refused = await open_session(team_server.url, **alice)
    assert refused.status_code == 429
    assert str(MAX_SESSIONS_PER_CLIENT) in refused.json()["error"]["message"]
    assert (await open_session(team_server.url, **bob)).status_code == 200
    # Closing one of hers makes room for another.
    async with httpx2.AsyncClient(timeout=10) as http:
        closed = await http.delete(
            f"{team_server.url}/mcp", headers={**alice, "mcp-session-id": opened[0].headers["mcp-session-id"]}
        )
    assert closed.status_code == 200
    assert (await open_session(team_server.url, **alice)).status_code == 200


async def test_anonymous_callers_of_a_loopback_server_share_one_session_budget(sandbox: SandboxServer) -> None:
    with HttpServer(server_env(sandbox)) as server:
        opened = [await open_session(server.url) for _ in range(MAX_SESSIONS_PER_CLIENT)]
        assert all(r.status_code == 200 for r in opened)
        assert (await open_session(server.url)).status_code == 429


# -- slow and idle connections ----------------------------------------------------------------------------------


def address(server: HttpServer) -> tuple[str, int]:
    url = httpx2.URL(server.url)
    assert url.port is not None
    return url.host, url.port


@asynccontextmanager
async def slow_clients(server: HttpServer, count: int, request: bytes) -> AsyncIterator[list[SocketStream]]:
    """``count`` connections that each send ``request`` (a part of one) and then nothing."""
    streams: list[SocketStream] = []
    try:
        for _ in range(count):
            stream = await anyio.connect_tcp(*address(server))
            streams.append(stream)
            with contextlib.suppress(anyio.BrokenResourceError, OSError):  # the server may have dropped it
                await stream.send(request)
        yield streams
    finally:
        for stream in streams:
            await stream.aclose()


async def closed_by_server(stream: SocketStream) -> None:
    """Read until the server closes the connection."""
    try:
        while await stream.receive():
            pass
    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
        return


HALF_HEAD = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
HALF_BODY = (
    b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b'Accept: application/json, text/event-stream\r\nContent-Length: 4000\r\n\r\n{"jsonrpc": '
)


async def test_half_sent_requests_are_closed_and_healthz_keeps_answering(team_server: HttpServer) -> None:
    async with (
        slow_clients(team_server, 40, HALF_HEAD) as heads,
        slow_clients(team_server, 10, HALF_BODY) as bodies,
    ):
        async with httpx2.AsyncClient(timeout=10) as http:
            assert (await http.get(f"{team_server.url}/healthz")).status_code == 200
        with anyio.fail_after(40):
            async with anyio.create_task_group() as tasks:
                for stream in heads + bodies:
                    tasks.start_soon(closed_by_server, stream)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE is POSIX")
async def test_slow_connections_beyond_the_file_limit_do_not_starve_healthz(sandbox: SandboxServer) -> None:
    with HttpServer(server_env(sandbox), open_files=64) as server:
        async with slow_clients(server, 100, HALF_HEAD):
            with anyio.fail_after(15):
                async with httpx2.AsyncClient(timeout=2) as http:
                    response = await http.get(f"{server.url}/healthz")
            assert response.status_code == 200
            # The MCP endpoint still serves whole requests too.
            assert (await open_session(server.url)).status_code == 200


# -- Host and Origin ---------------------------------------------------------------------------------------


async def test_allowed_host_star_turns_off_only_the_host_check(sandbox: SandboxServer) -> None:
    with HttpServer(
        server_env(sandbox), "--allowed-host", "*", "--allowed-origin", "https://app.example.com"
    ) as server:
        assert (await open_session(server.url, Host="anything.example")).status_code == 200
        assert (await open_session(server.url, Origin="https://app.example.com")).status_code == 200
        rebinding = await open_session(server.url, Host="attacker.example", Origin="http://attacker.example")
        assert rebinding.status_code == 403


async def test_a_trailing_slash_gets_no_redirect_and_the_host_check_first(team_server: HttpServer) -> None:
    alice = auth_headers(ALICE)
    foreign = await post(team_server.url, INITIALIZE, path="/mcp/", Host="attacker.example", **alice)
    assert foreign.status_code == 421 and "location" not in foreign.headers
    assert (await post(team_server.url, INITIALIZE, path="/mcp/", **alice)).status_code == 200
    async with httpx2.AsyncClient(timeout=10) as http:
        for path in ("/healthz/", "/mcp//", "/elsewhere"):
            response = await http.get(f"{team_server.url}{path}", headers={"Host": "attacker.example"})
            assert response.status_code in (404, 421) and "location" not in response.headers, path


# -- the tokens file ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("digest", ["ab" * 31 + "a", "g" * 64, "ab" * 33])
def test_a_hashed_entry_must_be_a_whole_sha256(tmp_path: Path, digest: str) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"alice:sha256:{digest}\n")
    with pytest.raises(ConfigurationError) as refused:
        TokenTable.load(tokens_file=path)
    assert "sha256" in str(refused.value) and "64" in str(refused.value)


def test_a_tokens_file_saved_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"alice:{ALICE}\r\nbob:{BOB}\r\n", encoding="utf-8-sig")
    table = TokenTable.load(tokens_file=path)
    assert table.identify(ALICE) == "alice" and table.identify(BOB) == "bob"


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_tokens_file_others_can_read_is_warned_about(sandbox: SandboxServer, tokens_file: Path) -> None:
    tokens_file.chmod(0o644)
    with HttpServer(server_env(sandbox, FLOW_MCP_TOKENS_FILE=str(tokens_file))) as server:
        warned = [line for line in server.logs() if line.get("event") == "tokens_file_readable_by_others"]
    assert warned and warned[0]["level"] == "warning" and "chmod 600" in warned[0]["help"]
    assert ALICE not in server.stderr


# -- the graceful stop ------------------------------------------------------------------------------------


async def drip(stream: SocketStream) -> None:
    """A body sent a byte at a time, for as long as the server takes it."""
    try:
        while True:
            await stream.send(b" ")
            await anyio.sleep(0.2)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        return


async def test_sigterm_stops_within_the_grace_period_while_a_client_drips_a_body(sandbox: SandboxServer) -> None:
    grace = 2.0
    with HttpServer(server_env(sandbox, FLOW_MCP_SHUTDOWN_GRACE=str(grace))) as server:
        async with slow_clients(server, 1, HALF_BODY) as (stream,), anyio.create_task_group() as tasks:
            tasks.start_soon(drip, stream)
            await anyio.sleep(0.5)  # the request is in the server's hands
            server.send()
            # The bound the README promises: the grace period plus a few seconds for the last results.
            await anyio.to_thread.run_sync(lambda: server.process.wait(timeout=grace + 8))
            tasks.cancel_scope.cancel()
    assert any(line.get("event") == "server_stopping" for line in server.logs())
