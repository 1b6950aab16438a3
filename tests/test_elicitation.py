"""A turn that waits on a person is answered by the MCP client's user (elicitation), on both protocol generations:
2026-07-28 (the client's default: the tool returns InputRequiredResult and is called again with the answer) and
2025-11-25 (mode="legacy": the tool asks mid-call on the back-channel). Real clients, a real sandbox on loopback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
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
    InputRequiredResult,
)

from flow_mcp.config import Settings
from flow_mcp.sandbox import SandboxServer
from flow_mcp.server.app import build_server

from .conftest import server_env, settings_for, stdio_server
from .httpserver import HttpServer, Replicas, http_client

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
async def test_over_stdio_the_user_answers_and_the_turn_completes(sandbox: SandboxServer, mode: str) -> None:
    user = answering(CHOICE)
    async with Client(stdio_server(server_env(sandbox)), mode=mode, elicitation_callback=user) as client:
        body = await ask(client, "Ask me a hook question")
    assert body["status"] == "completed" and CHOICE in body["answer"]
    assert len(user.asked) == 1 and len(resume_requests(sandbox)) == 1


@pytest.fixture
def http_server(sandbox: SandboxServer) -> Iterator[HttpServer]:
    with HttpServer(server_env(sandbox)) as server:
        yield server


@pytest.mark.parametrize("mode", MODES)
async def test_over_http_the_user_answers_and_the_turn_completes(
    sandbox: SandboxServer, http_server: HttpServer, mode: str
) -> None:
    user = answering(CHOICE)
    async with http_client(http_server.url, mode=mode, elicitation_callback=user) as client:
        body = await ask(client, "Ask me a hook question")
    assert body["status"] == "completed" and CHOICE in body["answer"]
    assert len(user.asked) == 1 and len(resume_requests(sandbox)) == 1


async def test_over_stateless_http_a_2025_11_25_client_cannot_be_asked_so_the_turn_waits(
    sandbox: SandboxServer,
) -> None:
    """A stateless server has no back-channel for a request of its own; 2026-07-28 needs none."""
    user = answering(CHOICE)
    with HttpServer(server_env(sandbox), "--stateless") as server:
        async with http_client(server.url, mode="legacy", elicitation_callback=user) as client:
            waiting = await ask(client, "Ask me a hook question")
        async with http_client(server.url, mode="auto", elicitation_callback=user) as client:
            completed = await ask(client, "Ask me a hook question")
    assert waiting["status"] == "waiting_for_input" and completed["status"] == "completed"
    assert len(user.asked) == 1 and len(resume_requests(sandbox)) == 1


async def test_an_answer_may_come_back_to_another_replica_but_not_from_another_client(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """2026-07-28 over stateless replicas: the sealed state opens on any replica (one key from the server's
    secret), and only for the client whose token it was made for."""
    alice, bob = "alice-token-7f3a9c2e5b1d4f60", "bob-token-0c8e6a4f2d9b7e51"
    tokens = tmp_path / "tokens"
    tokens.write_text(f"alice:{alice}\nbob:{bob}\n")
    env = server_env(sandbox, FLOW_MCP_TOKENS_FILE=str(tokens))
    with HttpServer(env, "--stateless") as a, HttpServer(env, "--stateless") as b:
        replicas = Replicas(a.url, b.url)
        states: list[str] = []

        async def on_the_other_replica(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
            replicas.target = 1  # the call that brings the answer goes to replica B
            return ElicitResult(action="accept", content={"answer": CHOICE})

        async with http_client(a.url, token=alice, transport=replicas, elicitation_callback=on_the_other_replica) as c:
            body = await ask(c, "Ask me a hook question")
            with anyio.fail_after(30):
                first = await c.session.call_tool(
                    "ask", {"message": "Ask me a hook question"}, allow_input_required=True
                )
            assert isinstance(first, InputRequiredResult) and first.request_state is not None
            states.append(first.request_state)
        async with http_client(a.url, token=bob, transport=replicas) as stranger:
            with anyio.fail_after(30), pytest.raises(MCPError) as refused:
                await stranger.call_tool(
                    "ask",
                    {"message": "Ask me a hook question"},
                    request_state=states[0],
                    input_responses={"answer": ElicitResult(action="accept", content={"answer": "not mine"})},
                )
    assert refused.value.error.data == INVALID_STATE
    assert body["status"] == "completed" and CHOICE in body["answer"]
    assert replicas.served[0] == 0 and replicas.served[-1] == 1
    assert len(resume_requests(sandbox)) == 1  # Bob's call resumed nothing


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
