"""A hostile FlowHunt: poison strings, endless, bombed and dripping bodies, hour-long Retry-After, echoed keys.

Each test pins a finding of an outside review. The scripted upstream (tests/support/upstream.py) plays FlowHunt; the
sandbox plays it where a whole turn matters.
Here the tests with real processes; the in-process ones: tests/integration/test_hostile_upstream.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client

from flow_mcp.sandbox import SandboxServer

from ..integration.test_client import requests_to
from ..integration.test_hostile_upstream import ANSWER, SURROGATES
from ..support.httpserver import HttpServer, http_client
from ..support.servers import SECRET_KEY, server_env, teed_server, text_of
from ..support.upstream import Scripted, Upstream
from .test_http import ALICE, BOB

pytestmark = pytest.mark.anyio


async def test_a_stdio_server_keeps_answering_after_flowhunt_sends_lone_surrogates(tmp_path: Path) -> None:
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with Upstream() as upstream:
        upstream.script(**SURROGATES)
        env = server_env(
            None,
            FLOWHUNT_BASE_URL=upstream.url,
            FLOWHUNT_API_KEY=SECRET_KEY,
            FLOWHUNT_WORKSPACE_ID="ws-1",
            FLOW_MCP_SETTLE_SECONDS="0.05",
            FLOW_MCP_POLL_MIN_INTERVAL="0.01",
            FLOW_MCP_MAX_RETRIES="0",
        )
        with anyio.fail_after(60):
            async with Client(teed_server(env, out, err)) as client:
                asked = await client.call_tool("ask", {"message": "hello"})
                assert not asked.is_error and (asked.structured_content or {})["answer"] == ANSWER
                for _ in range(2):  # the replay that used to kill the server every time
                    replayed = await client.call_tool("poll_events", {"session_id": "sess-1", "cursor": "0"})
                    assert not replayed.is_error, text_of(replayed)
                upstream.script(poll=Scripted(500, rb'{"detail": "broken \udfff"}'))
                failed = await client.call_tool("poll_events", {"session_id": "sess-1", "cursor": "0"})
                assert failed.is_error and "broken \ufffd" in text_of(failed)
                upstream.reset()
                still = await client.call_tool("ask", {"message": "still there?", "timeout_seconds": 1})
                assert not still.is_error, text_of(still)
    lines = out.read_bytes().decode("utf-8").splitlines()
    assert lines and all(json.loads(line)["jsonrpc"] == "2.0" for line in lines)


async def test_over_http_one_clients_flood_does_not_hold_back_another_clients_call(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"alice:{ALICE}\nbob:{BOB}\n")
    with HttpServer(server_env(sandbox, FLOW_MCP_TOKENS_FILE=str(tokens), FLOW_MCP_MAX_RPS="5")) as server:
        async with http_client(server.url, token=ALICE) as alice, http_client(server.url, token=BOB) as bob:
            created = await alice.call_tool("create_session", {})
            session = (created.structured_content or {})["session_id"]

            async def flood_poll() -> None:
                await alice.call_tool("poll_events", {"session_id": session, "cursor": "0"})

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tasks:
                    for _ in range(30):
                        tasks.start_soon(flood_poll)
                    # The burst of 5 went through; the rest of the flood queues in the key's budget.
                    while len(requests_to(sandbox, "invocation_response")) < 5:  # noqa: ASYNC110
                        await anyio.sleep(0.02)
                    assert not (await bob.call_tool("create_session", {})).is_error
    paths = [entry["path"] for entry in sandbox.state.request_log()]
    bobs_create = max(i for i, path in enumerate(paths) if path.endswith("/create"))
    assert sum(1 for path in paths[bobs_create:] if "invocation_response" in path) >= 15


def test_the_cli_refuses_a_base_url_with_user_info_without_echoing_it() -> None:
    env = server_env(None, FLOWHUNT_BASE_URL="https://me:hunter2pw@api.flowhunt.io", FLOWHUNT_API_KEY="k" * 24)
    done = subprocess.run(
        [sys.executable, "-m", "flow_mcp", "serve"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 2 and "FLOWHUNT_BASE_URL" in done.stderr
    assert "hunter2pw" not in done.stderr + done.stdout
