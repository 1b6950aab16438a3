"""Every fault at once: scripted turns through a real stdio server, checked against the sandbox's record: 300 of the
Flow Assistant's, then published flows' turns, with their questions and approvals answered through respond."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client

from flow_mcp.sandbox import SandboxConfig, SandboxServer

from ..support.faultsuite import (
    FAULT_FIGURES,
    FLOW_TURNS,
    MESSAGES,
    TurnRecord,
    check,
    run_ask_turn,
    run_flow_turn,
    run_poll_turn,
)
from ..support.servers import SECRET_KEY, server_env, teed_server, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(1200)]

SEED = int(os.environ.get("FLOW_MCP_FAULT_SEED", "20261126"))
TURNS = int(os.environ.get("FLOW_MCP_FAULT_TURNS", "300"))
FLOW_TURNS_COUNT = int(os.environ.get("FLOW_MCP_FAULT_FLOW_TURNS", "140"))
CONCURRENCY = int(os.environ.get("FLOW_MCP_FAULT_CONCURRENCY", "10"))  # 1 makes the fault sequence repeatable

ALL_FAULTS = {
    "inclusive_cursor": True,
    "shuffle": True,
    "duplicate_rate": 0.3,
    "rate_500": 0.10,
    "rate_503": 0.10,
    "rate_429": 0.05,
    "retry_after_s": 0.05,
    "rate_reset": 0.02,
    "rate_stall": 0.01,
    "stall_s": 1.5,
    "rate_truncated": 0.02,
    "rate_wrong_shape": 0.02,
    # A hostile FlowHunt: poisoned texts, bodies past the server's limit (FLOW_MCP_MAX_RESPONSE_BYTES below),
    # bodies dripped past FLOWHUNT_TIMEOUT, and Retry-After values of an hour, a day, 1e400 or garbage.
    "rate_surrogate": 0.03,
    "rate_bad_utf8": 0.03,
    "rate_oversized": 0.005,
    "oversized_bytes": 2_000_000.0,
    "rate_drip": 0.005,
    "drip_s": 1.5,
    "hostile_retry_after": True,
}


@pytest.fixture
def faulty_sandbox() -> Iterator[SandboxServer]:
    config = SandboxConfig(pacing=0.01, seed=SEED, api_key=SECRET_KEY)
    with SandboxServer(config) as server:
        yield server


async def test_every_event_arrives_exactly_once_with_every_fault_on(
    faulty_sandbox: SandboxServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    env = faulty_server_env(faulty_sandbox)
    records = [
        TurnRecord(MESSAGES[i % len(MESSAGES)].format(i=i), via="ask" if i % 2 == 0 else "poll") for i in range(TURNS)
    ]
    results_text: list[str] = []
    async with Client(teed_server(env, out, err)) as client:
        await client.list_tools()
        faulty_sandbox.state.update_config(ALL_FAULTS)
        limiter = anyio.Semaphore(CONCURRENCY)

        async def run(record: TurnRecord) -> None:
            async with limiter:
                await (run_ask_turn if record.via == "ask" else run_poll_turn)(client, record)

        with anyio.fail_after(900):
            async with anyio.create_task_group() as tasks:
                for record in records:
                    tasks.start_soon(run, record)
        faulty_sandbox.state.update_config({knob: type(value)() for knob, value in ALL_FAULTS.items()})
        after = await client.call_tool("ask", {"message": "still answering?"})
        results_text.append(text_of(after))
        assert not after.is_error and (after.structured_content or {})["status"] == "completed"

    stderr_text = err.read_text("utf-8")
    figures = check(records, faulty_sandbox, stderr_text)
    summary = {"seed": SEED, "concurrency": CONCURRENCY, **dataclasses.asdict(figures)}
    request.node.user_properties.append((FAULT_FIGURES, summary))  # shown at the end of the run
    print("\nfault-injection figures:", json.dumps(summary))

    assert sum(figures.faults.values()) > TURNS  # the faults really happened
    assert {"surrogate", "bad_utf8", "oversized", "drip", "429"} <= figures.faults.keys()
    assert figures.lost == 0 and figures.duplicated == 0 and figures.out_of_order == 0
    assert figures.wrong_status == 0 and figures.wrong_answer == 0
    assert "Traceback" not in stderr_text and '"tool_crashed"' not in stderr_text
    for line in out.read_text("utf-8").splitlines():
        assert json.loads(line)["jsonrpc"] == "2.0"
    everything = out.read_text("utf-8") + stderr_text + "".join(results_text)
    assert SECRET_KEY not in everything


async def test_flow_turns_and_their_answers_arrive_exactly_once_and_no_hook_is_answered_twice_with_every_fault_on(
    faulty_sandbox: SandboxServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    env = faulty_server_env(faulty_sandbox)
    records = []
    for i in range(FLOW_TURNS_COUNT):
        flow_id, message = FLOW_TURNS[i % len(FLOW_TURNS)]
        records.append(TurnRecord(message.format(i=i), via="flow", flow_id=flow_id))
    async with Client(teed_server(env, out, err)) as client:
        await client.list_tools()
        faulty_sandbox.state.update_config(ALL_FAULTS)
        limiter = anyio.Semaphore(CONCURRENCY)

        async def run(record: TurnRecord) -> None:
            async with limiter:
                await run_flow_turn(client, record)

        with anyio.fail_after(900):
            async with anyio.create_task_group() as tasks:
                for record in records:
                    tasks.start_soon(run, record)
        faulty_sandbox.state.update_config({knob: type(value)() for knob, value in ALL_FAULTS.items()})

    stderr_text = err.read_text("utf-8")
    figures = check(records, faulty_sandbox, stderr_text)
    summary = {"seed": SEED, "concurrency": CONCURRENCY, "flows": True, **dataclasses.asdict(figures)}
    request.config.stash.setdefault(FAULT_FIGURES, []).append(summary)
    print("\nfault-injection figures (flows):", json.dumps(summary))

    resumes = [entry for entry in faulty_sandbox.state.request_log() if entry["kind"] == "flow_resume_hook"]
    assert sum(figures.faults.values()) > FLOW_TURNS_COUNT and resumes  # the faults and the resumes really happened
    assert figures.lost == 0 and figures.duplicated == 0
    assert figures.resumes_doubled == 0 and figures.attachments_doubled == 0
    assert figures.wrong_status == 0 and figures.wrong_answer == 0
    answered = [r for r in records if r.flow_id in (FLOW_TURNS[1][0], FLOW_TURNS[2][0])]
    assert all(record.status == "completed" for record in answered)  # every question and approval was answered
    assert "Traceback" not in stderr_text and '"tool_crashed"' not in stderr_text
    for line in out.read_text("utf-8").splitlines():
        assert json.loads(line)["jsonrpc"] == "2.0"
    assert SECRET_KEY not in out.read_text("utf-8") + stderr_text


def faulty_server_env(sandbox: SandboxServer) -> dict[str, str]:
    """The server's settings under every fault: short timeouts and small limits, so faults cost seconds."""
    return server_env(
        sandbox,
        FLOW_MCP_LOG_LEVEL="debug",
        FLOWHUNT_TIMEOUT="0.5",
        FLOW_MCP_RETRY_MAX_SECONDS="10",
        FLOW_MCP_MAX_RESPONSE_BYTES="500000",
        FLOW_MCP_MAX_RETRY_AFTER="0.1",
    )
