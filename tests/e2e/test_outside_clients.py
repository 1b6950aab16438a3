"""What outside MCP clients (TypeScript SDK, fastmcp, LangChain, raw JSON-RPC) found, each proven with a real client:
cancellation and dropped connections on every transport, unreadable stdio lines, argument and prompt errors,
replayed sessions, result sizes, and the tool, schema and resource listings.
Here the tests with real processes; the in-process ones: tests/integration/test_outside_clients.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from anyio.abc import Process
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from flow_mcp.sandbox import SandboxServer

from ..integration.test_outside_clients import INVALID_PARAMS, ask_until_at_work
from ..support.httpserver import HttpServer, http_client
from ..support.servers import ROOT, server_env
from .test_http import ALICE, BOB

pytestmark = pytest.mark.anyio


PARSE_ERROR = -32700


POLLS = "/invocation_response/"


def polls(sandbox: SandboxServer) -> int:
    return sum(1 for entry in sandbox.state.request_log() if POLLS in entry["path"])


async def polling_stops(sandbox: SandboxServer, quiet: float = 1.0, within: float = 10.0) -> None:
    """Return once a whole ``quiet`` stretch passes without a poll reaching FlowHunt; fail after ``within``."""
    with anyio.fail_after(within):
        while True:
            before = polls(sandbox)
            await anyio.sleep(quiet)  # the server polls every 0.3 s at most while it follows a turn
            if polls(sandbox) == before:
                return


HTTP_MODES = [(True, "legacy"), (True, "auto"), (False, "legacy"), (False, "auto")]


HTTP_MODE_IDS = ["stateless-2025", "stateless-2026", "stateful-2025", "stateful-2026"]


@pytest.mark.parametrize(("stateless", "mode"), HTTP_MODES, ids=HTTP_MODE_IDS)
async def test_a_cancelled_ask_stops_the_servers_polling_on_every_http_mode(
    sandbox: SandboxServer, stateless: bool, mode: str
) -> None:
    sandbox.config.update({"pacing": 0.5})  # the long task takes about 30 s
    with HttpServer(server_env(sandbox), *(["--stateless"] if stateless else [])) as server:
        async with http_client(server.url, mode=mode) as client:
            created = await client.call_tool("create_session", {})
            assert created.structured_content is not None
            await ask_until_at_work(client, created.structured_content["session_id"])
            await polling_stops(sandbox)


class Cuttable(httpx2.AsyncBaseTransport):
    """An HTTP transport whose connections can be cut at once, as a crashed client or a lost network would."""

    def __init__(self) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self.cut = False

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self.cut:
            raise httpx2.ConnectError("the network is gone")
        return await self._inner.handle_async_request(request)

    async def cut_now(self) -> None:
        self.cut = True
        await self._inner.aclose()

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.mark.parametrize(("stateless", "mode"), HTTP_MODES, ids=HTTP_MODE_IDS)
async def test_a_client_that_drops_its_connection_mid_ask_stops_the_polling(
    sandbox: SandboxServer, stateless: bool, mode: str
) -> None:
    sandbox.config.update({"pacing": 0.5})
    network = Cuttable()
    at_work = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        if message and "step 1" in message:
            at_work.set()

    with HttpServer(server_env(sandbox), *(["--stateless"] if stateless else [])) as server:
        with anyio.fail_after(30), pytest.raises(Exception):  # noqa: B017 -- whatever the client makes of it
            async with (
                httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=300), transport=network) as http,
                Client(streamable_http_client(f"{server.url}/mcp", http_client=http), mode=mode) as client,
                anyio.create_task_group() as tasks,
            ):
                tasks.start_soon(client.call_tool, "ask", {"message": "a long task please"}, None, on_progress)
                await at_work.wait()
                await network.cut_now()  # no cancellation, no DELETE: the connection is simply gone
                await anyio.sleep_forever()
        await polling_stops(sandbox)


@asynccontextmanager
async def raw_stdio(sandbox: SandboxServer, protocol: str, log: Path) -> AsyncIterator[tuple[Process, Any]]:
    """A `flow-mcp` stdio subprocess logging to ``log`` and initialized at ``protocol``; yields it and a function
    that reads its next answer."""
    command = [sys.executable, "-m", "flow_mcp"]
    with log.open("wb") as stderr:
        async with await anyio.open_process(command, env=server_env(sandbox), stderr=stderr) as process:
            assert process.stdin is not None and process.stdout is not None
            buffer = b""

            async def answer() -> dict[str, Any]:
                nonlocal buffer
                assert process.stdout is not None
                with anyio.fail_after(30):
                    while b"\n" not in buffer:
                        buffer += await process.stdout.receive()
                line, buffer = buffer.split(b"\n", 1)
                return dict(json.loads(line))

            params = {"protocolVersion": protocol, "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}
            await send_lines(process, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params})
            assert (await answer())["id"] == 1
            await send_lines(process, {"jsonrpc": "2.0", "method": "notifications/initialized"})
            yield process, answer
            await process.stdin.aclose()
            with anyio.fail_after(15):
                await process.wait()


async def send_lines(process: Process, *messages: Any) -> None:
    assert process.stdin is not None
    raw = b"".join((m if isinstance(m, bytes) else json.dumps(m).encode()) + b"\n" for m in messages)
    await process.stdin.send(raw)


async def test_stdio_lines_the_sdk_cannot_read_get_a_parse_error_and_the_server_goes_on(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    lone_surrogate = b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"ask",' + (
        b'"arguments":{"message":"cut emoji \\ud83d"}}}'
    )
    batch = [{"jsonrpc": "2.0", "id": 8, "method": "ping"}, {"jsonrpc": "2.0", "id": 9, "method": "tools/list"}]
    ping = {"jsonrpc": "2.0", "id": 10, "method": "ping"}
    async with raw_stdio(sandbox, "2025-03-26", tmp_path / "stderr") as (process, answer):
        await send_lines(process, lone_surrogate, b"this is not json", batch, ping)
        cut, garbage, batched, pong = [await answer() for _ in range(4)]
    for error in (cut, garbage, batched):
        assert error["error"]["code"] == PARSE_ERROR and error["error"]["message"]
    # A request whose id can still be read is answered under it, so its host stops waiting at once.
    assert cut["id"] == 7
    assert garbage["id"] is None and batched["id"] is None
    assert pong == {"jsonrpc": "2.0", "id": 10, "result": {}}
    logged = [json.loads(line) for line in (tmp_path / "stderr").read_text().splitlines() if line.startswith("{")]
    assert sum(1 for entry in logged if entry["event"] == "unreadable_message") == 3


async def test_prompt_errors_over_stdio_are_invalid_params_and_log_no_traceback(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    requests = [
        {"jsonrpc": "2.0", "id": 2, "method": "prompts/get", "params": {"name": "nope"}},
        {"jsonrpc": "2.0", "id": 3, "method": "prompts/get",
         "params": {"name": "flowhunt_assistant", "arguments": {"task": 5}}},
        {"jsonrpc": "2.0", "id": 4, "method": "prompts/get",
         "params": {"name": "flowhunt_assistant", "arguments": {"topic": "x"}}},
    ]  # fmt: skip
    async with raw_stdio(sandbox, "2025-11-25", tmp_path / "stderr") as (process, answer):
        await send_lines(process, *requests)
        answers = sorted([await answer() for _ in requests], key=lambda a: a["id"])
    assert [a["error"]["code"] for a in answers] == [INVALID_PARAMS] * 3
    assert all(a["error"]["message"] for a in answers)
    assert "Traceback" not in (tmp_path / "stderr").read_text()


async def test_over_http_each_client_lists_only_its_own_sessions(sandbox: SandboxServer, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"alice:{ALICE}\nbob:{BOB}\n")
    with HttpServer(server_env(sandbox, FLOW_MCP_TOKENS_FILE=str(tokens))) as server:
        async with http_client(server.url, token=ALICE) as alice, http_client(server.url, token=BOB) as bob:
            mine = (await alice.call_tool("create_session", {})).structured_content
            theirs = (await bob.call_tool("create_session", {})).structured_content
            assert mine is not None and theirs is not None
            alice_sees = [str(r.uri) for r in (await alice.list_resources()).resources]
            bob_sees = [str(r.uri) for r in (await bob.list_resources()).resources]
    assert alice_sees == [f"flowhunt://sessions/{mine['session_id']}/transcript"]
    assert bob_sees == [f"flowhunt://sessions/{theirs['session_id']}/transcript"]


INSPECTOR = ROOT / "node_modules" / ".bin" / "mcp-inspector"


@pytest.mark.skipif(
    not INSPECTOR.exists() or shutil.which("node") is None,
    reason="MCP Inspector not installed: run `npm install --no-package-lock` (needs Node 20+); .ci/run does",
)
def test_the_typescript_sdk_sees_the_sessions_as_resources_and_clear_argument_and_prompt_errors(
    sandbox: SandboxServer,
) -> None:
    with HttpServer(server_env(sandbox)) as server:

        def inspector(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(INSPECTOR), "--cli", f"{server.url}/mcp", "--transport", "http", *args],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
                stdin=subprocess.DEVNULL,
            )

        call_ask = ("--method", "tools/call", "--tool-name", "ask", "--tool-arg", "message=hi")
        asked = json.loads(inspector(*call_ask).stdout)
        listed = json.loads(inspector("--method", "resources/list").stdout)["resources"]
        wrong = inspector(*call_ask, "--tool-arg", "timeout_seconds=soon")
        unknown = inspector("--method", "prompts/get", "--prompt-name", "no_such_prompt")
    session_id = asked["structuredContent"]["session_id"]
    assert [entry["uri"] for entry in listed] == [f"flowhunt://sessions/{session_id}/transcript"]
    refused = json.loads(wrong.stdout)
    assert refused["isError"] and "timeout_seconds" in refused["content"][0]["text"]
    assert unknown.returncode != 0 and str(INVALID_PARAMS) in unknown.stderr
