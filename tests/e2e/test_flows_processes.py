"""run_flow and respond in real ``flow-mcp serve`` processes: over stdio (with a local file) and over HTTP."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import anyio
import pytest
from mcp import Client

from flow_mcp.sandbox import DEFAULT_FLOWS, SandboxServer

from ..integration.test_flows import body_of, flowhunt_id, text_of
from ..support.httpserver import HttpServer, http_client
from ..support.servers import SECRET_KEY, server_env, teed_server

pytestmark = pytest.mark.anyio

FAQ, SCHEDULER, ECHO = DEFAULT_FLOWS[0].id, DEFAULT_FLOWS[4].id, DEFAULT_FLOWS[6].id
TOKEN = "carol-token-4b8d2f6a0c9e1357"


async def test_over_stdio_run_flow_attaches_a_local_file_and_respond_answers_its_question(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.config.update({"api_key": SECRET_KEY})
    report = tmp_path / "report.csv"
    report.write_text("quarter,revenue\nQ1,10\n")
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with anyio.fail_after(60):
        async with Client(teed_server(server_env(sandbox, FLOWHUNT_API_KEY=SECRET_KEY), out, err)) as client:
            echoed = body_of(
                await client.call_tool(
                    "run_flow",
                    {"flow_id": ECHO, "message": "sum it up", "variables": {"unit": "EUR"},
                     "attachments": [{"path": str(report)}]},
                )
            )  # fmt: skip
            asked = body_of(await client.call_tool("run_flow", {"flow_id": SCHEDULER, "message": "Meet Dana"}))
            answered = body_of(
                await client.call_tool(
                    "respond",
                    {"session_id": asked["session_id"], "hook_id": asked["waiting_for"]["hook_id"], "message": "Mon"},
                )
            )
    assert "Attachments: report.csv." in echoed["answer"] and '"unit": "EUR"' in echoed["answer"]
    assert echoed["session_id"].startswith("flow.") and answered["status"] == "completed"
    session = sandbox.state.get_session(flowhunt_id(echoed["session_id"]))
    assert session is not None and session.attachments[0]["file_type"] == "text/csv"
    for line in out.read_text("utf-8").splitlines():
        assert json.loads(line)["jsonrpc"] == "2.0"
    assert SECRET_KEY not in out.read_text("utf-8") + err.read_text("utf-8")


async def test_over_http_run_flow_hides_the_session_id_refuses_paths_and_continues_by_handle(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"carol:{TOKEN}\n")
    local = tmp_path / "secret-plans.txt"
    local.write_text("only on the server's disk")
    with HttpServer(server_env(sandbox, FLOW_MCP_TOKENS_FILE=str(tokens))) as server:
        async with http_client(server.url, token=TOKEN) as client:
            refused = await client.call_tool(
                "run_flow", {"flow_id": ECHO, "message": "read it", "attachments": [{"path": str(local)}]}
            )
            sent = {"name": "plans.txt", "content_base64": base64.b64encode(b"from the client").decode()}
            first = body_of(
                await client.call_tool("run_flow", {"flow_id": ECHO, "message": "read it", "attachments": [sent]})
            )
            handle = first["session_id"]
            second = body_of(
                await client.call_tool("run_flow", {"flow_id": ECHO, "message": "again", "session_id": handle})
            )
            polled = body_of(await client.call_tool("poll_events", {"session_id": handle, "cursor": "0"}))
    assert refused.is_error and "content_base64" in text_of(refused) and "stdio" in text_of(refused)
    assert "Attachments: plans.txt." in first["answer"] and second["session_id"] == handle
    (session_id,) = {
        entry["path"].split("/")[4] for entry in sandbox.state.request_log() if entry["kind"] == "flow_invoke"
    }
    assert session_id not in handle and not handle.startswith("flow.")
    assert [event["text"] for event in polled["events"] if event["role"] == "human"] == ["read it", "again"]
    assert not [entry for entry in sandbox.state.request_log() if entry["kind"] == "flow_attach"][1:]
