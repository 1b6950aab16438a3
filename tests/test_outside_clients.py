"""What outside MCP clients (TypeScript SDK, fastmcp, LangChain, raw JSON-RPC) found, each proven with a real client:
cancellation and dropped connections on every transport, unreadable stdio lines, argument and prompt errors,
replayed sessions, result sizes, and the tool, schema and resource listings."""

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
from mcp.shared.exceptions import MCPError
from pydantic import SecretStr

from flow_mcp.config import Settings
from flow_mcp.flowhunt.turn import TurnProgress, advance, status_of
from flow_mcp.flowhunt.wire import RawEvent
from flow_mcp.sandbox import SandboxServer
from flow_mcp.server.app import build_server

from .conftest import ROOT, server_env, settings_for
from .httpserver import HttpServer, http_client
from .test_http import ALICE, BOB
from .upstream import Scripted, Upstream

pytestmark = pytest.mark.anyio

INVALID_PARAMS = -32602
PARSE_ERROR = -32700
POLLS = "/invocation_response/"


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


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


async def ask_until_at_work(client: Client, session_id: str) -> None:
    """Start a long ask and return (abandoning it) as soon as the assistant is at work on FlowHunt."""
    at_work = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        if message and "step 1" in message:
            at_work.set()

    async def call() -> None:
        await client.call_tool(
            "ask", {"message": "a long task please", "session_id": session_id}, progress_callback=on_progress
        )

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call)
            await at_work.wait()
            tasks.cancel_scope.cancel()  # the client cancels the call: notifications/cancelled


# -- 9: cancellation and dropped connections ------------------------------------------------------------------

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


async def test_after_a_cancelled_ask_the_next_one_in_its_session_waits_for_the_turn_instead_of_interleaving(
    sandbox: SandboxServer,
) -> None:
    sandbox.config.update({"pacing": 0.5})
    async with Client(build_server(settings_for(sandbox))) as client:
        created = await client.call_tool("create_session", {})
        assert created.structured_content is not None
        session_id = created.structured_content["session_id"]
        await ask_until_at_work(client, session_id)
        again = await client.call_tool("ask", {"message": "and now this", "session_id": session_id})
    assert again.is_error and "poll_events" in text_of(again)  # how to follow the running turn
    session = sandbox.state.get_session(session_id)
    assert session is not None and len(sandbox.state.session_invocations(session)) == 1


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


# -- 10: stdio lines the SDK cannot read ----------------------------------------------------------------------


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


# -- 11: argument errors ----------------------------------------------------------------------------------------

BAD_ARGUMENTS = [
    ("ask", {"message": 5}, "message"),
    ("ask", {"message": ["hi"]}, "message"),
    ("ask", {}, "message"),
    ("ask", {"message": "hi", "timeout_seconds": "soon"}, "timeout_seconds"),
    ("ask", {"message": "hi", "ai_model": 4.1}, "ai_model"),
    ("ask", {"message": "hi", "session_id": {"id": "x"}}, "session_id"),
    ("poll_events", {"session_id": "s", "cursor": 0.5, "wait_seconds": [30]}, "wait_seconds"),
    ("poll_events", {"session_id": 12, "cursor": "0"}, "session_id"),
    ("invoke", {"session_id": "s", "message": None}, "message"),
    ("create_session", {"start_with_welcome_message": "maybe"}, "start_with_welcome_message"),
    ("create_session", {"context_flow_id": ["f"]}, "context_flow_id"),
]


@pytest.mark.parametrize(("tool", "arguments", "named"), BAD_ARGUMENTS)
async def test_an_argument_of_the_wrong_type_gets_an_error_naming_it_and_what_to_send(
    client: Client, sandbox: SandboxServer, tool: str, arguments: dict[str, Any], named: str
) -> None:
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    text = text_of(result)
    assert named in text
    assert "pydantic" not in text and "validation error" not in text, text
    assert sandbox.state.request_log() == []


# -- 12: a replayed session -------------------------------------------------------------------------------------


def event(event_id: str, at: int, kind: str, role: str, **meta: Any) -> RawEvent:
    return RawEvent(event_id=event_id, created_at_timestamp=at, action_type=kind, event_type=role, metadata=meta)


def test_a_turn_whose_answer_is_older_than_the_settle_window_is_completed_while_a_fresh_one_runs() -> None:
    settle, now = 1500, 100_000
    turn = [event("h", 90_000, "message", "human", message="hi"), event("a", 95_000, "message", "ai", message="yo")]
    assert status_of(advance(TurnProgress(), turn, now), now, settle) == "completed"
    just_answered = [*turn[:1], event("a", now - 100, "message", "ai", message="yo")]
    assert status_of(advance(TurnProgress(), just_answered, now), now, settle) == "running"
    # FlowHunt's clock 10 s behind ours, measured when the message was sent: a fresh answer still runs.
    lagging = [*turn[:1], event("a", now - 10_100, "message", "ai", message="yo")]
    assert status_of(advance(TurnProgress(), lagging, now, clock_skew_ms=-10_000), now, settle) == "running"


async def test_replaying_a_finished_session_reports_it_completed(sandbox: SandboxServer) -> None:
    async with Client(build_server(settings_for(sandbox, settle_seconds=1.0))) as client:
        asked = await client.call_tool("ask", {"message": "Build a FAQ bot"})
        assert asked.structured_content is not None and asked.structured_content["status"] == "completed"
        replay = await client.call_tool(
            "poll_events", {"session_id": asked.structured_content["session_id"], "cursor": "0", "wait_seconds": 0}
        )
    assert replay.structured_content is not None
    assert replay.structured_content["answer"] == asked.structured_content["answer"]
    assert replay.structured_content["status"] == "completed"


# -- 13: result sizes --------------------------------------------------------------------------------------------

MEGABYTE = 1_000_000


def big_session() -> list[dict[str, Any]]:
    """A finished session with a 5 MB tool response amid a dozen 300 KB thoughts, one event per millisecond."""
    steps: list[tuple[str, str, str, dict[str, Any]]] = [("h", "human", "message", {"message": "go"})]
    for n in range(12):
        steps.append((f"c{n}", "ai", "agent_cot", {"cot_id": f"c{n}", "content": f"thought {n} " + "x" * 300_000}))
        if n == 5:
            output = {"tool_name": "read_docs", "agent_query": "all", "tool_response": "y" * 5 * MEGABYTE}
            steps.append(("huge", "ai", "v3_tool_call_end", output))
    steps.append(("a", "ai", "message", {"message": "done"}))
    return [
        {"event_id": name, "created_at_timestamp": str(1000 + n), "event_type": role, "action_type": kind,
         "metadata": meta}
        for n, (name, role, kind, meta) in enumerate(steps)
    ]  # fmt: skip


async def test_poll_events_and_the_events_resource_stay_under_the_size_limit_and_page_through_everything() -> None:
    session = big_session()
    with Upstream() as upstream:
        upstream.script(poll=Scripted(body=json.dumps(session).encode()))
        settings = settings_for_upstream(upstream)
        async with Client(build_server(settings)) as client:
            seen: list[dict[str, Any]] = []
            cursor, more = "0", True
            with anyio.fail_after(60):
                while more:
                    result = await client.call_tool("poll_events", {"session_id": "sess-1", "cursor": cursor})
                    assert not result.is_error, text_of(result)[:500]
                    assert len(json.dumps(result.model_dump(mode="json"))) <= MEGABYTE
                    body = result.structured_content
                    assert body is not None
                    seen += body["events"]
                    cursor, more = body["cursor"], body["more"]
            read = await client.read_resource("flowhunt://sessions/sess-1/events")
    assert [e["event_id"] for e in seen] == [e["event_id"] for e in session]  # each once, in order
    huge = next(e for e in seen if e["event_id"] == "huge")
    assert "truncated" in huge["metadata"]["tool_response"]  # cut, and saying so
    (content,) = read.contents
    assert len(content.text) <= MEGABYTE  # type: ignore[union-attr]
    events_body = json.loads(content.text)  # type: ignore[union-attr]
    assert events_body["more"] is True and events_body["events"][0]["event_id"] == "h"


async def test_an_ask_whose_answer_is_huge_stays_under_the_size_limit_and_says_it_was_cut() -> None:
    turn = [
        {"event_id": "h", "created_at_timestamp": "1000", "event_type": "human", "action_type": "message",
         "metadata": {"message": "write a lot"}},
        {"event_id": "a", "created_at_timestamp": "1001", "event_type": "ai", "action_type": "message",
         "metadata": {"message": "z" * 3 * MEGABYTE}},
    ]  # fmt: skip
    with Upstream() as upstream:
        upstream.script(poll=Scripted(body=json.dumps(turn).encode()))
        async with Client(build_server(settings_for_upstream(upstream))) as client:
            with anyio.fail_after(30):
                asked = await client.call_tool("ask", {"message": "write a lot"})
    assert not asked.is_error and asked.structured_content is not None, text_of(asked)[:500]
    assert len(json.dumps(asked.model_dump(mode="json"))) <= MEGABYTE
    assert asked.structured_content["status"] == "completed"
    assert "truncated" in asked.structured_content["answer"]


def settings_for_upstream(upstream: Upstream) -> Settings:
    return Settings(base_url=upstream.url, api_key=SecretStr("fh-upstream-key-123456"), max_retries=0, timeout=10)


# -- 14: prompt errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "arguments", "named"),
    [("no_such_prompt", None, "no_such_prompt"), ("flowhunt_assistant", {"topic": "faq bot"}, "topic")],
)
async def test_an_unknown_prompt_or_argument_is_invalid_params_naming_it(
    client: Client, name: str, arguments: dict[str, str] | None, named: str
) -> None:
    with pytest.raises(MCPError) as refused:
        await client.get_prompt(name, arguments)
    assert refused.value.error.code == INVALID_PARAMS
    assert named in refused.value.error.message


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


# -- 15: titles, schemas, resources --------------------------------------------------------------------------------


async def test_tools_have_a_title_and_their_schemas_state_every_limit(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for tool in tools.values():
        assert tool.title and tool.annotations is not None and tool.title == tool.annotations.title
    wait = tools["poll_events"].input_schema["properties"]["wait_seconds"]
    assert (wait["minimum"], wait["maximum"]) == (0, 45)
    timeout = tools["ask"].input_schema["properties"]["timeout_seconds"]
    assert (timeout["minimum"], timeout["maximum"]) == (1, 600)
    output = tools["poll_events"].output_schema
    assert output is not None
    metadata = output["$defs"]["Event"]["properties"]["metadata"]
    assert {"object", "array", "string", "null"} <= set(metadata["type"])


async def test_resources_list_shows_the_sessions_the_server_worked_on_and_they_can_be_read(client: Client) -> None:
    assert (await client.list_resources()).resources == []
    asked = await client.call_tool("ask", {"message": "Build a FAQ bot"})
    assert asked.structured_content is not None
    listed = (await client.list_resources()).resources
    assert [str(r.uri) for r in listed] == [f"flowhunt://sessions/{asked.structured_content['session_id']}/transcript"]
    read = await client.read_resource(str(listed[0].uri))
    assert asked.structured_content["answer"] in read.contents[0].text  # type: ignore[union-attr]


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


# -- the same through the TypeScript SDK (the MCP Inspector CLI) --------------------------------------------------

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
