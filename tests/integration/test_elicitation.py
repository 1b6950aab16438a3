"""A turn that waits on a person is answered by the MCP client's user (elicitation), on both protocol generations:
2026-07-28 (the client's default: the tool returns InputRequiredResult and is called again with the answer) and
2025-11-25 (mode="legacy": the tool asks mid-call on the back-channel). Real clients, a real sandbox on loopback.
Here the in-process tests; those with real processes: tests/e2e/test_elicitation.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext, ElicitationFnT
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CallToolResult,
    ElicitRequestFormParams,
    ElicitRequestParams,
    ElicitResult,
    ErrorData,
)

from flow_mcp.config import Settings
from flow_mcp.sandbox import SandboxServer
from flow_mcp.server.app import build_server

from ..support.servers import settings_for

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]  # auto: 2026-07-28 in memory and over stdio or HTTP; legacy: 2025-11-25
CHOICE = "Claude Sonnet 4.6, please"
INVALID_STATE = {"reason": "invalid_request_state"}  # the SDK's refusal of a requestState it did not seal
Action = Literal["accept", "decline", "cancel"]


class User:
    """The person behind an MCP client: answers each form with ``content`` (or acts otherwise), and notes it."""

    def __init__(self, action: Action = "accept", content: dict[str, Any] | None = None) -> None:
        self.action = action
        self.content = content
        self.asked: list[ElicitRequestFormParams] = []

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult | ErrorData:
        assert isinstance(params, ElicitRequestFormParams)
        self.asked.append(params)
        return ElicitResult(action=self.action, content=self.content if self.action == "accept" else None)


def answering(text: str) -> User:
    return User(content={"answer": text})


@asynccontextmanager
async def in_memory(settings: Settings, mode: str, user: ElicitationFnT | None) -> AsyncIterator[Client]:
    async with Client(build_server(settings), mode=mode, elicitation_callback=user) as client:
        yield client


async def ask(client: Client, message: str) -> dict[str, Any]:
    with anyio.fail_after(30):
        result = await client.call_tool("ask", {"message": message})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def resumes(sandbox: SandboxServer, session_id: str) -> list[dict[str, Any]]:
    session = sandbox.state.get_session(session_id)
    assert session is not None
    return sandbox.state.session_resumes(session)


def text_of(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def resume_requests(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return [entry for entry in sandbox.state.request_log() if entry["kind"] == "flow_resume_hook"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_question_answered_by_the_user_resumes_the_hook_once_and_the_turn_completes(
    sandbox: SandboxServer, settings: Settings, mode: str
) -> None:
    user = answering(CHOICE)
    seen: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    async with in_memory(settings, mode, user) as client:
        with anyio.fail_after(30):
            result = await client.call_tool("ask", {"message": "Ask me a hook question"}, progress_callback=on_progress)
    body = result.structured_content
    assert body is not None and body["status"] == "completed", result.content
    assert CHOICE in body["answer"] and body["waiting_for"] is None
    assert [params.message for params in user.asked] == ["Which LLM should the flow use: GPT4.1 or Claude Sonnet 4.6?"]
    assert set(user.asked[0].requested_schema["properties"]) == {"answer"}
    [resumed] = resumes(sandbox, body["session_id"])
    assert (resumed["status"], resumed["message"]) == ("resumed", CHOICE)
    assert len(resume_requests(sandbox)) == 1
    assert "Answer passed on; the assistant goes on" in seen


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("action", ["decline", "cancel"])
async def test_a_declined_or_cancelled_question_returns_the_turn_waiting_and_resumes_nothing(
    sandbox: SandboxServer, settings: Settings, mode: str, action: Action
) -> None:
    user = User(action)
    async with in_memory(settings, mode, user) as client:
        body = await ask(client, "Ask me a hook question")
    assert body["status"] == "waiting_for_input" and body["waiting_for"]["hook_id"]
    assert len(user.asked) == 1 and resume_requests(sandbox) == []


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_without_elicitation_gets_the_turn_waiting_as_before(
    sandbox: SandboxServer, settings: Settings, mode: str
) -> None:
    async with in_memory(settings, mode, None) as client:
        body = await ask(client, "Ask me a hook question")
    assert body["status"] == "waiting_for_input" and body["waiting_for"]["kind"] == "hook_waiting_for_input"
    assert resume_requests(sandbox) == []


@pytest.mark.parametrize("mode", MODES)
async def test_with_elicitation_switched_off_nobody_is_asked(sandbox: SandboxServer, mode: str) -> None:
    user = answering(CHOICE)
    async with in_memory(settings_for(sandbox, elicitation=False), mode, user) as client:
        body = await ask(client, "Ask me a hook question")
    assert body["status"] == "waiting_for_input" and user.asked == [] and resume_requests(sandbox) == []


@pytest.mark.parametrize("mode", MODES)
async def test_an_approved_tool_runs_and_the_approval_carries_the_hitl_id(
    sandbox: SandboxServer, settings: Settings, mode: str
) -> None:
    user = User(content={"decision": "approve"})
    async with in_memory(settings, mode, user) as client:
        body = await ask(client, "Needs approval")
    assert body["status"] == "completed" and body["answer"].startswith("Approved: I ran delete_component")
    # The report covers the whole turn: the work and flow edits before the question, the tool run after it.
    assert [call["name"] for call in body["tool_calls"]] == ["search_docs", "delete_component"]
    assert len(body["actions"]) == 3
    [asked] = user.asked
    assert "delete_component" in asked.message and "ChatInput-old" in asked.message  # the tool and its arguments
    [resumed] = resumes(sandbox, body["session_id"])
    assert resumed["message"] == "approve"
    assert resumed["form_data"]["approved"] is True and resumed["form_data"]["hitl_id"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_rejected_tool_does_not_run_and_the_reason_reaches_flowhunt(
    sandbox: SandboxServer, settings: Settings, mode: str
) -> None:
    user = User(content={"decision": "reject", "reason": "keep the old input"})
    async with in_memory(settings, mode, user) as client:
        body = await ask(client, "Needs approval")
    assert body["status"] == "completed" and body["answer"].startswith("Rejected: I did not run delete_component")
    assert "keep the old input" in body["answer"]
    [resumed] = resumes(sandbox, body["session_id"])
    assert resumed["message"] == "reject: keep the old input" and resumed["form_data"]["approved"] is False


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("refusal", ["404", "405", "422"])
async def test_a_resume_flowhunt_refuses_returns_the_turn_waiting_with_a_note(
    sandbox: SandboxServer, settings: Settings, mode: str, refusal: str
) -> None:
    sandbox.state.update_config({"assistant_resume": refusal})
    async with in_memory(settings, mode, answering(CHOICE)) as client:
        with anyio.fail_after(30):
            result = await client.call_tool("ask", {"message": "Ask me a hook question"})
    body = result.structured_content
    assert body is not None and body["status"] == "waiting_for_input" and body["note"]
    assert body["note"] in text_of(result)
    assert [entry["status"] for entry in resume_requests(sandbox)] == [int(refusal)]


async def test_a_user_who_answers_too_late_gets_the_turn_waiting(sandbox: SandboxServer) -> None:
    """2025-11-25: the tool stops waiting for the answer at FLOW_MCP_ELICITATION_TIMEOUT."""
    answered = anyio.Event()

    async def slow_user(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        await answered.wait()
        return ElicitResult(action="accept", content={"answer": CHOICE})

    settings = settings_for(sandbox, elicitation_timeout=0.3)
    async with in_memory(settings, "legacy", slow_user) as client:
        body = await ask(client, "Ask me a hook question")
        answered.set()
    assert body["status"] == "waiting_for_input" and resume_requests(sandbox) == []


async def test_a_late_answer_on_2026_07_28_gets_the_turn_waiting_and_resumes_nothing(sandbox: SandboxServer) -> None:
    """2026-07-28: the client answers between two calls; past FLOW_MCP_ELICITATION_TIMEOUT the answer is not used."""

    async def slow_user(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        await anyio.sleep(0.6)
        return ElicitResult(action="accept", content={"answer": CHOICE})

    settings = settings_for(sandbox, elicitation_timeout=0.3)
    async with in_memory(settings, "auto", slow_user) as client:
        body = await ask(client, "Ask me a hook question")
    assert body["status"] == "waiting_for_input" and resume_requests(sandbox) == []


async def test_a_forged_request_state_is_refused_and_sends_nothing(sandbox: SandboxServer, settings: Settings) -> None:
    async with in_memory(settings, "auto", answering(CHOICE)) as client:
        with anyio.fail_after(30), pytest.raises(MCPError) as refused:
            await client.call_tool(
                "ask",
                {"message": "Ask me a hook question"},
                request_state='{"v":1}',
                input_responses={"answer": ElicitResult(action="accept", content={"answer": "x"})},
            )
    assert refused.value.error.data == INVALID_STATE
    assert [entry for entry in sandbox.state.request_log() if entry["kind"]] == []


# -- real processes: the era is chosen by the client over stdio and HTTP ---------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_resume_that_fails_after_flowhunt_took_it_is_not_resent_and_the_turn_going_on_is_followed(
    sandbox: SandboxServer, settings: Settings, mode: str
) -> None:
    sandbox.state.update_config({"rate_500": 1.0, "fault_only": "/resume-hook"})  # a 500 after the resume took
    async with in_memory(settings, mode, answering(CHOICE)) as client:
        with anyio.fail_after(30):
            result = await client.call_tool("ask", {"message": "Ask me a hook question"})
    # The session shows the turn going on after the 500: the answer arrived, and the turn is followed to its end.
    body = result.structured_content
    assert not result.is_error and body is not None, text_of(result)
    assert body["status"] == "completed" and CHOICE in body["answer"]
    assert [entry["status"] for entry in resume_requests(sandbox)] == [500]  # not sent again
