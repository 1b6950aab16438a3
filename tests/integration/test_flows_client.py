"""The flowhunt layer's published-flow calls and hook resumes against the sandbox (no MCP): paths, paging, retries."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from flow_mcp.errors import HookNotResumedError, InvalidArgumentError, NotResumableError, OutOfCreditsError, ServerError
from flow_mcp.flowhunt.client import FlowHuntClient
from flow_mcp.flowhunt.cursor import Cursor
from flow_mcp.flowhunt.flows import find_flows, pages
from flow_mcp.flowhunt.follow import follow
from flow_mcp.flowhunt.resume import find_hook, reply_to, resume
from flow_mcp.flowhunt.send import send_message
from flow_mcp.flowhunt.wire import RawEvent
from flow_mcp.sandbox import DEFAULT_FLOWS, SandboxServer

from ..support.servers import settings_for

pytestmark = pytest.mark.anyio

FAQ, SCHEDULER, EMAIL = DEFAULT_FLOWS[0].id, DEFAULT_FLOWS[4].id, DEFAULT_FLOWS[5].id
SETTLE_MS = 300


@pytest.fixture
async def flowhunt(sandbox: SandboxServer) -> AsyncIterator[FlowHuntClient]:
    async with FlowHuntClient(settings_for(sandbox, max_retries=3)) as client:
        yield client


def log_of(sandbox: SandboxServer, kind: str) -> list[dict[str, Any]]:
    return [entry for entry in sandbox.state.request_log() if entry["kind"] == kind]


def deadline() -> float:
    return time.monotonic() + 20


async def waiting_session(flowhunt: FlowHuntClient, flow_id: str) -> tuple[str, str]:
    """A flow session whose turn waits on a hook: its id and the hook id."""
    session_id = (await flowhunt.create_flow_session(flow_id)).session_id
    sent = await send_message(flowhunt, session_id, "hello", settle_ms=SETTLE_MS, new_session=True, kind="flow")
    end = await follow(flowhunt, session_id, sent.cursor, deadline=deadline(), kind="flow")
    assert end.progress.waiting_for is not None and end.progress.waiting_for.hook_id
    return session_id, end.progress.waiting_for.hook_id


async def test_flow_sessions_are_invoked_and_polled_on_their_own_paths(
    sandbox: SandboxServer, flowhunt: FlowHuntClient
) -> None:
    created = await flowhunt.create_flow_session(FAQ, {"lang": "en"})
    sent = await send_message(flowhunt, created.session_id, "hi", "GPT4.1", new_session=True, kind="flow")
    end = await follow(flowhunt, created.session_id, sent.cursor, deadline=deadline(), kind="flow")
    assert end.progress.outcome == "completed"
    (invoke,) = log_of(sandbox, "flow_invoke")
    assert invoke["path"] == f"/v2/flows/sessions/{created.session_id}/invoke" and log_of(sandbox, "flow_poll")
    assert not log_of(sandbox, "assistant_invoke") and not log_of(sandbox, "assistant_poll")
    session = sandbox.state.get_session(created.session_id)
    assert session is not None and session.variables == {"lang": "en"}
    assert session.invocations[0].ai_model is None  # a flow takes no model


async def test_pages_follow_the_last_flows_id_and_stop_at_a_short_page(
    sandbox: SandboxServer, flowhunt: FlowHuntClient
) -> None:
    listed = [flow.id async for page in pages(flowhunt, page_size=3) for flow in page]
    assert listed == [flow.id for flow in DEFAULT_FLOWS]
    assert len(log_of(sandbox, "flow_list")) == 3  # 3 + 3 + 2: the short page is the last
    found, more = await find_flows(flowhunt, "bot", 2)
    assert [flow.name for flow in found] == ["FAQ Bot (EN)", "Sales-Bot"] and more


async def test_a_flows_detail_carries_its_input_hint(flowhunt: FlowHuntClient) -> None:
    detail = await flowhunt.get_flow(FAQ)
    assert detail.try_flow_input_placeholder == "Ask a question about our products" and detail.detailed_description
    with pytest.raises(InvalidArgumentError):
        await flowhunt.get_flow("../v3/flow-assistants/create")


async def test_an_attachment_is_uploaded_once_as_multipart(sandbox: SandboxServer, flowhunt: FlowHuntClient) -> None:
    session_id = (await flowhunt.create_flow_session(FAQ)).session_id
    attached = await flowhunt.upload_attachment(session_id, "a b.txt", b"hello", "text/plain")
    assert (attached.file_name, attached.file_type) == ("a b.txt", "text/plain") and attached.file_id
    sandbox.state.update_config({"rate_500": 1.0, "fault_only": "/attachments"})
    with pytest.raises(ServerError):
        await flowhunt.upload_attachment(session_id, "again.txt", b"x", "text/plain")
    assert len(log_of(sandbox, "flow_attach")) == 2  # a 500 may come after the upload: not sent again


async def test_a_hook_is_resumed_once_and_a_second_answer_says_already_received(
    sandbox: SandboxServer, flowhunt: FlowHuntClient
) -> None:
    session_id, hook_id = await waiting_session(flowhunt, SCHEDULER)
    waiting = await find_hook(flowhunt, session_id, hook_id, kind="flow", deadline=deadline())
    assert waiting.asked is not None and waiting.asked.action_type == "hook_waiting_for_input"
    resumed = await resume(
        flowhunt, session_id, hook_id, "Monday", None, kind="flow", start=waiting.cursor, settle_ms=SETTLE_MS
    )
    assert not resumed.recovered
    with pytest.raises(HookNotResumedError) as twice:
        await resume(flowhunt, session_id, hook_id, "Tuesday", None, kind="flow", start=waiting.cursor, settle_ms=0)
    assert twice.value.status == "already_received"


async def test_a_500_after_the_resume_took_effect_is_recovered_from_the_turn_going_on_without_a_second_resume(
    sandbox: SandboxServer, flowhunt: FlowHuntClient
) -> None:
    session_id, hook_id = await waiting_session(flowhunt, SCHEDULER)
    waiting = await find_hook(flowhunt, session_id, hook_id, kind="flow", deadline=deadline())
    sandbox.state.update_config({"rate_500": 1.0, "fault_only": "/resume-hook"})
    resumed = await resume(
        flowhunt, session_id, hook_id, "Monday", None, kind="flow", start=waiting.cursor, settle_ms=SETTLE_MS,
        deadline=deadline(),
    )  # fmt: skip
    assert resumed.recovered and resumed.events
    session = sandbox.state.get_session(session_id)
    assert session is not None and [r["status"] for r in sandbox.state.session_resumes(session)] == ["resumed"]


async def test_a_503_before_the_resume_is_retried_and_the_hook_is_answered_once(
    sandbox: SandboxServer, flowhunt: FlowHuntClient
) -> None:
    session_id, hook_id = await waiting_session(flowhunt, SCHEDULER)
    sandbox.state.update_config({"rate_503": 0.5, "fault_only": "/resume-hook", "seed": 3})
    waiting = await find_hook(flowhunt, session_id, hook_id, kind="flow", deadline=deadline())
    await resume(flowhunt, session_id, hook_id, "Monday", None, kind="flow", start=waiting.cursor, settle_ms=0)
    statuses = [entry["status"] for entry in log_of(sandbox, "flow_resume_hook")]
    assert 503 in statuses and statuses[-1] == 200
    session = sandbox.state.get_session(session_id)
    assert session is not None and [r["status"] for r in sandbox.state.session_resumes(session)] == ["resumed"]


async def test_an_assistant_session_that_refuses_resume_hook_is_not_resumable(
    sandbox: SandboxServer, flowhunt: FlowHuntClient
) -> None:
    sandbox.state.update_config({"assistant_resume": "422"})
    session_id = (await flowhunt.create_session()).session_id
    with pytest.raises(NotResumableError) as refused:
        await resume(
            flowhunt, session_id, "hook-1", "x", None, kind="assistant", start=Cursor(timestamp=0), settle_ms=0
        )
    assert refused.value.status_code == 422


def test_an_approval_is_read_from_the_first_word_of_the_message() -> None:
    asked = RawEvent.model_validate(
        {
            "event_id": "e",
            "created_at_timestamp": "1",
            "action_type": "hitl_approval_requested",
            "metadata": {"hook_id": "h", "hitl_id": "hitl-1", "tool_name": "send_email"},
        }
    )

    def form(message: str, form_data: dict[str, Any] | None = None) -> dict[str, Any] | None:
        question, reply = reply_to(asked, "h", message, form_data)
        assert question.kind == "approval" and question.hook_id == "h" and reply.message == message
        return reply.form_data

    assert form("Approve.") == {"approved": True, "hitl_id": "hitl-1", "reason": None}
    assert form("reject: too rude") == {"approved": False, "hitl_id": "hitl-1", "reason": "too rude"}
    assert form("anything", {"approved": True}) == {"approved": True}  # the caller's own form wins
    with pytest.raises(InvalidArgumentError):
        form("perhaps")
    question, reply = reply_to(None, "h", "perhaps", None)  # a question not seen: the message alone
    assert (question.kind, question.hook_id, reply.form_data) == ("hook", "h", None)


async def test_out_of_credits_on_a_flow_call_is_never_retried(sandbox: SandboxServer, flowhunt: FlowHuntClient) -> None:
    sandbox.state.update_config({"out_of_credits": "flow_list"})
    with pytest.raises(OutOfCreditsError):
        await flowhunt.list_flows(10)
    assert len(log_of(sandbox, "flow_list")) == 1


async def test_cancel_stops_a_flow_sessions_turn(sandbox: SandboxServer, flowhunt: FlowHuntClient) -> None:
    session_id, hook_id = await waiting_session(flowhunt, SCHEDULER)
    assert await flowhunt.cancel(session_id) == "cancelled"
    waiting = await find_hook(flowhunt, session_id, hook_id, kind="flow", deadline=deadline())
    with pytest.raises(HookNotResumedError) as expired:
        await resume(flowhunt, session_id, hook_id, "late", None, kind="flow", start=waiting.cursor, settle_ms=0)
    assert expired.value.status == "expired"
