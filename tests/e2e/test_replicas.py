"""Replicas that share one FlowHunt key through Redis (docs/replicas.md): real `flow-mcp serve --transport http
--stateless` processes, a real redis-server, the sandbox's request log as the judge."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.server.streamable_http import REQUEST_CANCELLED

from flow_mcp.config import key_fingerprint
from flow_mcp.sandbox import SandboxServer

from ..support.httpserver import HttpServer, http_client
from ..support.redis_server import RedisServer, free_port, redis_server_binary
from ..support.servers import ROOT, server_env, text_of
from .test_outside_clients import polling_stops, polls

pytestmark = pytest.mark.anyio

RATE = 20
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
LONG_TASK = "a long task please"  # about 30 s of tool calls at pacing 0.5


def replica_env(sandbox: SandboxServer, redis_server: RedisServer, **extra: str) -> dict[str, str]:
    return server_env(sandbox, FLOW_MCP_REDIS_URL=redis_server.url, **extra)


def busiest_second(stamps: list[int]) -> int:
    """The most requests in any window of 1000 ms."""
    stamps, most, first = sorted(stamps), 0, 0
    for last, stamp in enumerate(stamps):
        while stamp - stamps[first] >= 1000:
            first += 1
        most = max(most, last - first + 1)
    return most


async def test_three_replicas_keep_to_the_keys_budget_and_every_turn_completes_once(
    sandbox: SandboxServer, redis_server: RedisServer
) -> None:
    env = replica_env(sandbox, redis_server, FLOW_MCP_MAX_RPS=str(RATE), FLOW_MCP_ASK_TIMEOUT="600")
    results: dict[str, Any] = {}

    async def turn(client: Client, message: str) -> None:
        results[message] = await client.call_tool("ask", {"message": message})

    with HttpServer(env, "--stateless") as a, HttpServer(env, "--stateless") as b, HttpServer(env, "--stateless") as c:
        async with http_client(a.url) as on_a, http_client(b.url) as on_b, http_client(c.url) as on_c:
            with anyio.fail_after(300):
                async with anyio.create_task_group() as tasks:
                    for number in range(60):  # 60 turns at once, 20 on each replica
                        tasks.start_soon(turn, (on_a, on_b, on_c)[number % 3], f"Build bot number {number}")
        logs = [server.logs() for server in (a, b, c)]
    calls = [entry for entry in sandbox.state.request_log() if entry["kind"] is not None]
    # The key's budget held across the three: at most RATE a second after a burst of RATE (the bucket's size), and
    # RATE / 2 for requests that took their token just before a window and reached the sandbox inside it (up to
    # 500 ms of delivery on a machine as busy as CI's). Three replicas each with a budget of its own send 3 x
    # (RATE + RATE), far above.
    assert busiest_second([entry["at_ms"] for entry in calls]) <= RATE + RATE + RATE // 2
    assert all(any(line.get("event") == "flowhunt_request" for line in log) for log in logs)  # all three worked
    # Every turn completed, each message was sent once, and each result holds its session's events, once each.
    assert len(results) == 60
    sessions = list(sandbox.state.sessions.values())
    assert sorted(i.message for s in sessions for i in s.invocations) == sorted(results)
    by_message = {s.invocations[0].message: s for s in sessions}
    for message, result in results.items():
        assert not result.is_error, text_of(result)
        content = result.structured_content
        assert content["status"] == "completed" and content["answer"]
        session = by_message[message]
        assert content["message_id"] == session.invocations[0].message_id
        assert content["events_count"] == len(sandbox.state.session_events(session))
    with redis_server.client() as plain:  # shared by the key's fingerprint, never the key
        stored = " ".join(plain.keys("*"))
        assert key_fingerprint(sandbox.config.api_key) in stored and sandbox.config.api_key not in stored


async def test_a_429_one_replica_meets_pauses_the_others(sandbox: SandboxServer, redis_server: RedisServer) -> None:
    env = replica_env(sandbox, redis_server, FLOW_MCP_MAX_RETRIES="10", FLOW_MCP_ASK_TIMEOUT="120")
    sandbox.config.update({"pacing": 0.1})  # the long task takes about 6 s

    with HttpServer(env, "--stateless") as a, HttpServer(env, "--stateless") as b, HttpServer(env, "--stateless") as c:
        async with http_client(a.url) as on_a, http_client(b.url) as on_b, http_client(c.url) as on_c:
            # Retry-After of 2 s: sent as an HTTP date (whole seconds) it still leaves more than the quiet window.
            sandbox.state.update_config(
                {"rate_429": 0.05, "retry_after_s": 2.0, "seed": 3, "fault_only": "/invocation_response"}
            )
            with anyio.fail_after(120):
                async with anyio.create_task_group() as tasks:
                    for client in (on_a, on_b, on_c, on_a, on_b, on_c):
                        tasks.start_soon(client.call_tool, "ask", {"message": LONG_TASK})
        refused_by = [server for server in (a, b, c) if any(line.get("status") == 429 for line in server.logs())]
    log = sorted(sandbox.state.request_log(), key=lambda entry: entry["at_ms"])
    refusals = [entry for entry in log if entry["status"] == 429]
    assert refusals and refused_by
    for refusal in refusals:
        # No replica sends anything for this key while the Retry-After runs (a little slack for requests in flight).
        quiet_from, quiet_to = refusal["at_ms"] + 100, refusal["at_ms"] + 500
        assert not [entry for entry in log if quiet_from < entry["at_ms"] < quiet_to]


async def test_a_session_followed_on_one_replica_is_refused_on_another_until_its_lease_ends_after_a_kill(
    sandbox: SandboxServer, redis_server: RedisServer
) -> None:
    env = replica_env(sandbox, redis_server, FLOW_MCP_REDIS_LEASE_SECONDS="2")
    sandbox.config.update({"pacing": 0.5})
    at_work = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        if message and "step 1" in message:
            at_work.set()

    async def ask_on_a(client: Client, handle: str) -> None:
        with contextlib.suppress(Exception):  # replica A is killed under this call: whatever the client makes of it
            await client.call_tool("ask", {"message": LONG_TASK, "session_id": handle}, progress_callback=on_progress)

    with HttpServer(env, "--stateless") as a, HttpServer(env, "--stateless") as b:
        async with http_client(b.url) as on_b:
            created = await on_b.call_tool("create_session", {})
            assert created.structured_content is not None
            handle = created.structured_content["session_id"]
            async with http_client(a.url) as on_a, anyio.create_task_group() as tasks:
                tasks.start_soon(ask_on_a, on_a, handle)
                with anyio.fail_after(30):
                    await at_work.wait()
                    # B refuses, and says where A's turn stands once A's hold in Redis shows it (within 0.2 s).
                    while True:
                        refused = await on_b.call_tool("ask", {"message": "And now?", "session_id": handle})
                        assert refused.is_error and "on another replica" in text_of(refused)
                        if "poll_events" in text_of(refused):
                            break
                        await anyio.sleep(0.1)
                a.stop(signal.SIGKILL)  # no release: only the lease's end frees the session
                with anyio.fail_after(30):
                    while True:
                        taken = await on_b.call_tool(
                            "ask", {"message": "And now?", "session_id": handle, "timeout_seconds": 5}
                        )
                        if not (taken.is_error and "on another replica" in text_of(taken)):
                            break
                        await anyio.sleep(0.2)
                assert not taken.is_error, text_of(taken)
                tasks.cancel_scope.cancel()
    assert "poll_events" in text_of(refused) and handle in text_of(refused)
    invocations = next(iter(sandbox.state.sessions.values())).invocations
    assert [i.message for i in invocations] == [LONG_TASK, "And now?"]  # the refused asks sent nothing


async def test_a_cancellation_sent_to_another_replica_stops_the_polling_where_the_call_runs(
    sandbox: SandboxServer, redis_server: RedisServer
) -> None:
    env = replica_env(sandbox, redis_server)
    sandbox.config.update({"pacing": 0.5})
    with HttpServer(env, "--stateless") as a, HttpServer(env, "--stateless") as b:
        async with http_client(a.url) as client:
            created = await client.call_tool("create_session", {})
            assert created.structured_content is not None
            handle = created.structured_content["session_id"]
        call = {
            "jsonrpc": "2.0",
            "id": 4242,
            "method": "tools/call",
            "params": {
                "name": "ask",
                "arguments": {"message": LONG_TASK, "session_id": handle},
                "_meta": {"progressToken": "p"},
            },
        }
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 4242}}
        async with (
            httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=120)) as http,
            http.stream("POST", f"{a.url}/mcp", json=call, headers=MCP_HEADERS) as answer,
        ):
            lines = answer.aiter_lines()
            with anyio.fail_after(30):
                async for line in lines:
                    if "step 1" in line:
                        break
            # The call runs on A, its connection stays open; the cancellation reaches B.
            told = await http.post(f"{b.url}/mcp", json=cancel, headers=MCP_HEADERS)
            assert told.status_code < 300
            await polling_stops(sandbox, quiet=1.0, within=5.0)
            with anyio.fail_after(10):  # A answers the call as cancelled and closes its stream
                rest = [line async for line in lines]
        logs = a.logs()
    assert any(line.get("event") == "request_cancelled" and line.get("via") == "redis" for line in logs)
    answers = [json.loads(line[len("data: ") :]) for line in rest if line.startswith("data: ") and '"id"' in line]
    assert [answer["error"]["code"] for answer in answers] == [REQUEST_CANCELLED]  # and no result
    assert polls(sandbox) > 0


async def test_with_redis_stopped_tools_keep_working_degraded_and_share_again_when_it_is_back(
    sandbox: SandboxServer, redis_server: RedisServer
) -> None:
    env = replica_env(sandbox, redis_server)

    async def health(server: HttpServer) -> dict[str, Any]:
        async with httpx2.AsyncClient(timeout=10) as http:
            response = await http.get(f"{server.url}/healthz")
        assert response.status_code == 200  # degraded is still serving
        body: dict[str, Any] = response.json()
        return body

    with HttpServer(env, "--stateless") as a, HttpServer(env, "--stateless") as b:
        assert (await health(a))["degraded"] is False
        async with http_client(a.url) as on_a, http_client(b.url) as on_b:
            with anyio.fail_after(60):
                assert not (await on_a.call_tool("ask", {"message": "Build a bot"})).is_error
                redis_server.stop()
                for client in (on_a, on_b, on_a):
                    asked = await client.call_tool("ask", {"message": "Build a bot while Redis is away"})
                    assert not asked.is_error and asked.structured_content["status"] == "completed"
            for server in (a, b):
                with anyio.fail_after(10):
                    while not (await health(server))["degraded"]:  # noqa: ASYNC110 -- another process's state
                        await anyio.sleep(0.2)
            redis_server.start()  # empty: nothing of before survived
            for server in (a, b):
                with anyio.fail_after(15):
                    while (await health(server))["degraded"]:  # noqa: ASYNC110 -- another process's state
                        await anyio.sleep(0.2)
            with anyio.fail_after(60):
                assert not (await on_b.call_tool("ask", {"message": "Build a bot, Redis is back"})).is_error
        with redis_server.client() as plain:  # the budget is in Redis again
            assert plain.exists(f"flow-mcp:{key_fingerprint(sandbox.config.api_key)}:budget")
        events = [line.get("event") for line in a.logs()]
    assert "redis_unavailable" in events and "redis_back" in events
    assert events.index("redis_unavailable") < events.index("redis_back")


def test_a_redis_url_without_the_redis_package_is_refused_with_the_install_line(sandbox: SandboxServer) -> None:
    without_redis = "import sys; sys.modules['redis'] = None; from flow_mcp.cli import main; main()"
    env = server_env(sandbox, FLOW_MCP_REDIS_URL="redis://127.0.0.1:1/0")
    done = subprocess.run(
        [sys.executable, "-c", without_redis, "serve", "--transport", "http", "--port", "0", "--stateless"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert 'pip install "flow-mcp[redis]"' in done.stderr


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("redis://:Qx7#zz9@127.0.0.1:6379/0", "Qx7"),  # a # or / in the password, not percent-encoded
        ("redis://user:Wv3/zz9@127.0.0.1:6379/0", "Wv3"),
        ("redis://:1234#zz9@127.0.0.1:6379/0", "zz9"),  # reads as port 1234 of no host, the rest a fragment
        ("redis://127.0.0.1:Kp8/0", "Kp8"),
        ("redis://127.0.0.1:99999/0", "99999"),
        ("redis://[::1/0", "[::1"),
    ],
)
def test_a_redis_url_that_cannot_be_read_stops_the_server_with_one_line_that_quotes_none_of_it(
    url: str, secret: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flow_mcp", "serve", "--transport", "http", "--port", "0", "--stateless"],
        env=server_env(None, FLOW_MCP_REDIS_URL=url, FLOWHUNT_API_KEY="k" * 24),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "FLOW_MCP_REDIS_URL" in done.stderr
    assert secret not in done.stderr


def test_without_a_redis_url_the_server_never_loads_the_redis_package(sandbox: SandboxServer) -> None:
    code = (
        "import sys; from flow_mcp.config import HttpOptions, Settings; from flow_mcp.server.bookkeeping import Drain;"
        " from flow_mcp.server.http import TokenTable, build_http_app;"
        " build_http_app(Settings(), HttpOptions(stateless=True), TokenTable(), drain=Drain());"
        " print('redis' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=server_env(sandbox), capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "False", done.stderr


async def test_the_two_replica_example_serves_one_session_from_both_replicas_through_its_redis(
    sandbox: SandboxServer,
) -> None:
    redis_server_binary()  # the example starts its own
    ports = {name: str(free_port()) for name in ("REDIS_PORT", "PORT_A", "PORT_B")}
    env = server_env(sandbox, FLOW_MCP=str(Path(sys.executable).parent / "flow-mcp"), **ports)
    sandbox.config.update({"pacing": 0.5})
    script = ROOT / "examples" / "replicas" / "two-replicas.sh"
    bash = shutil.which("bash") or "/bin/bash"
    example = await anyio.open_process(
        [bash, str(script)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    a, b = (f"http://127.0.0.1:{ports[name]}" for name in ("PORT_A", "PORT_B"))
    try:
        async with httpx2.AsyncClient(timeout=5) as http:
            with anyio.fail_after(60):
                for url in (a, b):
                    while True:
                        with contextlib.suppress(httpx2.TransportError):
                            health = (await http.get(f"{url}/healthz")).json()
                            if health.get("redis") == "ok":
                                break
                        await anyio.sleep(0.2)
        at_work = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            if message and "step 1" in message:
                at_work.set()

        async with http_client(a) as on_a, http_client(b) as on_b, anyio.create_task_group() as tasks:
            created = await on_a.call_tool("create_session", {})
            assert created.structured_content is not None
            handle = created.structured_content["session_id"]
            args = {"message": LONG_TASK, "session_id": handle, "timeout_seconds": 30}
            tasks.start_soon(partial(on_a.call_tool, "ask", args, progress_callback=on_progress))
            with anyio.fail_after(30):
                await at_work.wait()
            refused = await on_b.call_tool("ask", {"message": "And now?", "session_id": handle})
            tasks.cancel_scope.cancel()
        assert refused.is_error and "on another replica" in text_of(refused)
    finally:
        example.send_signal(signal.SIGTERM)
        with anyio.fail_after(60):  # the example's trap stops its replicas and its redis-server
            await example.wait()
