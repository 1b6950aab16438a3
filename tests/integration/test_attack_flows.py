"""Outside review of published flows (attack2): failing tests for findings. See attack/probe*.py."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp_types import ElicitResult

from flow_mcp.sandbox import DEFAULT_FLOWS, SandboxServer
from flow_mcp.server.app import build_server

from ..support.servers import settings_for

pytestmark = pytest.mark.anyio
SCHED, ECHO = DEFAULT_FLOWS[4].id, DEFAULT_FLOWS[6].id


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def test_upload_500_error_does_not_invite_a_retry_that_attaches_twice(sandbox: SandboxServer) -> None:
    async with Client(build_server(settings_for(sandbox))) as client:
        first = await client.call_tool("run_flow", {"flow_id": ECHO, "message": "first"})
        session_id = first.structured_content["session_id"]
        httpx2.post(f"{sandbox.url}/_sandbox/config", json={"rate_500": 1.0, "fault_only": "/attachments"})
        files = [{"name": "report.txt", "content_base64": "aGk="}]
        failed = await client.call_tool(
            "run_flow", {"flow_id": ECHO, "message": "second", "session_id": session_id, "attachments": files}
        )
        assert failed.is_error
        # The 500 came after FlowHunt stored the file: the text must not just say "Retry shortly"
        # (resume-hook's texts say "may have reached FlowHunt"); retrying as told attaches report.txt twice.
        assert "may have" in text_of(failed), text_of(failed)


async def test_an_attachment_name_flowhunt_would_refuse_is_refused_before_a_session_is_created(
    sandbox: SandboxServer,
) -> None:
    async with Client(build_server(settings_for(sandbox))) as client:
        result = await client.call_tool(
            "run_flow",
            {
                "flow_id": ECHO,
                "message": "hi",
                "attachments": [{"name": "x" * 5000 + ".txt", "content_base64": "aGk="}],
            },
        )
    created = [e for e in sandbox.state.request_log() if e["kind"] == "flow_session_create"]
    assert result.is_error and not created  # docs: "All checks happen before anything is created"


async def test_a_failed_upload_names_the_session_it_created(sandbox: SandboxServer) -> None:
    httpx2.post(f"{sandbox.url}/_sandbox/config", json={"rate_500": 1.0, "fault_only": "/attachments"})
    async with Client(build_server(settings_for(sandbox))) as client:
        result = await client.call_tool(
            "run_flow", {"flow_id": ECHO, "message": "hi", "attachments": [{"name": "a.txt", "content_base64": "aGk="}]}
        )
    created = [e for e in sandbox.state.request_log() if e["kind"] == "flow_session_create"]
    assert result.is_error and len(created) == 1
    # The session is open at FlowHunt: the error names it, so the caller goes on there instead of orphaning it.
    assert "flow." in text_of(result) and "The message was not sent" in text_of(result), text_of(result)


async def test_attachment_name_with_directories_is_not_sent_as_is(sandbox: SandboxServer) -> None:
    async with Client(build_server(settings_for(sandbox))) as client:
        result = await client.call_tool(
            "run_flow",
            {
                "flow_id": ECHO,
                "message": "hi",
                "attachments": [{"name": "../../etc/cron.d/x.txt", "content_base64": "aGk="}],
            },
        )
    assert result.is_error or "../" not in text_of(result), text_of(result)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_an_unusable_elicitation_answer_is_not_dropped_silently(sandbox: SandboxServer, mode: str) -> None:
    async def user(context: Any, params: Any) -> ElicitResult:
        return ElicitResult(action="accept", content={"answer": "x" * 70_000})  # past the form's maxLength

    async with Client(build_server(settings_for(sandbox)), mode=mode, elicitation_callback=user) as client:
        result = await client.call_tool("run_flow", {"flow_id": SCHED, "message": "book"})
    body = result.structured_content
    assert body["status"] == "waiting_for_input"
    # The user did answer; the result should say the answer could not be used (a note), not look unasked.
    assert body.get("note"), text_of(result)
