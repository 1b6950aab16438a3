"""A turn that waits on a person is answered by the MCP client's user (elicitation), on both protocol generations:
2026-07-28 (the client's default: the tool returns InputRequiredResult and is called again with the answer) and
2025-11-25 (mode="legacy": the tool asks mid-call on the back-channel). Real clients, a real sandbox on loopback.
Here the tests with real processes; the in-process ones: tests/integration/test_elicitation.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import (
    ElicitRequestParams,
    ElicitResult,
    InputRequiredResult,
)

from flow_mcp.sandbox import SandboxServer

from ..integration.test_elicitation import CHOICE, INVALID_STATE, MODES, answering, ask, resume_requests
from ..support.httpserver import HttpServer, Replicas, http_client
from ..support.servers import server_env, stdio_server

pytestmark = pytest.mark.anyio


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
