"""Published flows through a real MCP client (in memory) against the sandbox: list_flows, run_flow, respond."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from flow_mcp.sandbox import DEFAULT_FLOWS, SandboxServer
from flow_mcp.server.app import build_server

from ..support.servers import settings_for
from .test_elicitation import answering, in_memory

pytestmark = pytest.mark.anyio

FAQ, SUPPORT, SALES_DASH, SALES, SCHEDULER, EMAIL, ECHO, REPORT = (flow.id for flow in DEFAULT_FLOWS)
POLL = re.compile(r'poll_events\(session_id="([^"]+)", cursor="([^"]+)"')
RESPOND = re.compile(r'respond\(session_id="([^"]+)", hook_id="([^"]+)"')


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def body_of(result: Any) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    body: dict[str, Any] = result.structured_content
    return body


def flowhunt_id(session_id: str) -> str:
    assert session_id.startswith("flow.")
    return session_id.removeprefix("flow.")


def calls(sandbox: SandboxServer, kind: str) -> list[dict[str, Any]]:
    return [entry for entry in sandbox.state.request_log() if entry["kind"] == kind]


def resumes(sandbox: SandboxServer, session_id: str) -> list[dict[str, Any]]:
    session = sandbox.state.get_session(session_id)
    assert session is not None
    return sandbox.state.session_resumes(session)


async def run_flow(client: Client, flow_id: str, message: str, **arguments: Any) -> Any:
    return await client.call_tool("run_flow", {"flow_id": flow_id, "message": message, **arguments})


async def poll_to_the_end(client: Client, session_id: str, cursor: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    events: list[dict[str, Any]] = []
    with anyio.fail_after(60):
        while True:
            body = body_of(
                await client.call_tool("poll_events", {"session_id": session_id, "cursor": cursor, "wait_seconds": 2})
            )
            events += body["events"]
            cursor = body["cursor"]
            if body["status"] != "running":
                return events, body


# -- list_flows ------------------------------------------------------------------------------------------------


async def test_list_flows_gives_every_published_flow_with_its_hint(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert tools["list_flows"].annotations is not None and tools["list_flows"].annotations.read_only_hint
    result = await client.call_tool("list_flows", {})
    body = body_of(result)
    assert [flow["flow_id"] for flow in body["flows"]] == [flow.id for flow in DEFAULT_FLOWS] and not body["more"]
    faq = body["flows"][0]
    assert (faq["name"], faq["input_hint"]) == ("FAQ Bot (EN)", "Ask a question about our products")
    # Without FLOW_MCP_FLOW_TOOLS no flow has a tool of its own (test_flow_tools.py covers the names then).
    assert all(flow["tool_name"] is None for flow in body["flows"])
    assert "FAQ Bot (EN)" in text_of(result) and FAQ in text_of(result)


async def test_list_flows_filters_on_name_or_description_ignoring_case(client: Client) -> None:
    sales = body_of(await client.call_tool("list_flows", {"query": "SALES"}))
    assert [flow["flow_id"] for flow in sales["flows"]] == [
        SALES_DASH,
        SALES,
        REPORT,
    ]  # REPORT: in the middle of its name
    slovak = body_of(await client.call_tool("list_flows", {"query": "SLOVENČINE"}))
    assert [flow["flow_id"] for flow in slovak["flows"]] == [SUPPORT]
    none = await client.call_tool("list_flows", {"query": "no such flow"})
    assert body_of(none)["flows"] == [] and "list_flows without query" in text_of(none)


async def test_list_flows_walks_the_pages_by_scroll_id_and_says_when_more_match(
    sandbox: SandboxServer, client: Client
) -> None:
    many = [{"id": f"flow-{i:03d}", "name": f"Bulk flow {i}", "description": "x"} for i in range(230)]
    sandbox.state.update_config({"flows": json.dumps([*many, {"id": "last", "name": "The needle"}])})
    sandbox.state.reset()
    needle = body_of(await client.call_tool("list_flows", {"query": "needle"}))
    assert [flow["flow_id"] for flow in needle["flows"]] == ["last"] and not needle["more"]
    pages = calls(sandbox, "flow_list")
    assert len(pages) == 3  # 100 + 100 + 31: the short page is the last
    first = body_of(await client.call_tool("list_flows", {"limit": 200}))
    assert [flow["flow_id"] for flow in first["flows"]] == [flow["id"] for flow in many[:200]] and first["more"]
    few = body_of(await client.call_tool("list_flows", {"query": "bulk", "limit": 3}))
    assert len(few["flows"]) == 3 and few["more"]


async def test_a_listing_of_exactly_one_full_page_ends_on_the_empty_page_after_it(
    sandbox: SandboxServer, client: Client
) -> None:
    many = [{"id": f"flow-{i:03d}", "name": f"Flow {i}"} for i in range(100)]
    sandbox.state.update_config({"flows": json.dumps(many)})
    body = body_of(await client.call_tool("list_flows", {"query": "nothing matches this"}))
    assert body["flows"] == [] and not body["more"]
    first, second = calls(sandbox, "flow_list")
    assert second["status"] == 200 and first["status"] == 200


# -- run_flow ----------------------------------------------------------------------------------------------------


async def test_run_flow_opens_a_session_answers_and_says_how_to_continue(
    sandbox: SandboxServer, client: Client
) -> None:
    seen: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    result = await client.call_tool(
        "run_flow", {"flow_id": FAQ, "message": "Do you ship to Mars?"}, progress_callback=on_progress
    )
    body = body_of(result)
    assert body["status"] == "completed" and 'FAQ Bot (EN) answers "Do you ship to Mars?"' in body["answer"]
    assert text_of(result).startswith(body["answer"])
    assert f'run_flow(flow_id="{FAQ}", message=..., session_id="{body["session_id"]}")' in text_of(result)
    assert "Message sent; the flow is working" in seen and "Answer ready" in seen
    (created,) = calls(sandbox, "flow_session_create")
    assert created["status"] == 201
    session = sandbox.state.get_session(flowhunt_id(body["session_id"]))
    assert session is not None and session.flow is not None and session.flow.id == FAQ

    again = body_of(await run_flow(client, FAQ, "And to the Moon?", session_id=body["session_id"]))
    assert again["session_id"] == body["session_id"] and "And to the Moon?" in again["answer"]
    assert len(calls(sandbox, "flow_session_create")) == 1 and len(session.invocations) == 2


async def test_run_flow_passes_variables_to_a_new_session_only(sandbox: SandboxServer, client: Client) -> None:
    body = body_of(await run_flow(client, ECHO, "hi", variables={"lang": "sk", "tone": "warm"}))
    assert '"lang": "sk"' in body["answer"] and '"tone": "warm"' in body["answer"]
    refused = await run_flow(client, ECHO, "hi", variables={"lang": "en"}, session_id=body["session_id"])
    assert refused.is_error and "new session only" in text_of(refused)
    wrong = await run_flow(client, ECHO, "hi", variables={"n": 5})
    assert wrong.is_error and "variables" in text_of(wrong)


async def test_a_failing_flow_reports_the_failure(client: Client) -> None:
    result = await run_flow(client, FAQ, "please fail")
    body = body_of(result)
    assert body["status"] == "failed" and body["error"] and "The flow failed" in text_of(result)


async def test_a_long_flow_turn_returns_running_and_poll_events_follows_it_to_the_end_once(
    sandbox: SandboxServer, client: Client
) -> None:
    body = body_of(await run_flow(client, FAQ, "a long job", timeout_seconds=1))
    assert body["status"] == "running"
    events, end = await poll_to_the_end(client, body["session_id"], body["cursor"])
    assert end["status"] == "completed" and end["answer"]
    session = sandbox.state.get_session(flowhunt_id(body["session_id"]))
    assert session is not None
    emitted = {event["event_id"] for event in sandbox.state.session_events(session) if event["visible"]}
    delivered = [event["event_id"] for event in events]
    assert len(delivered) == len(set(delivered)) and set(delivered) <= emitted
    assert len(delivered) + body["events_count"] == len(emitted)


async def test_an_unknown_flow_points_to_list_flows(client: Client) -> None:
    result = await run_flow(client, "00000000-0000-4000-8000-000000000bad", "hi")
    assert result.is_error and "Unknown flow" in text_of(result) and "list_flows" in text_of(result)
    bad = await run_flow(client, "not a flow id", "hi")
    assert bad.is_error and "flow_id" in text_of(bad)


async def test_sessions_of_each_kind_are_refused_by_the_other_kinds_tool(client: Client) -> None:
    flow_session = body_of(await run_flow(client, FAQ, "hi"))["session_id"]
    assistant_session = body_of(await client.call_tool("create_session", {}))["session_id"]
    refused = await client.call_tool("ask", {"message": "hi", "session_id": flow_session})
    assert refused.is_error and "run_flow" in text_of(refused)
    refused = await run_flow(client, FAQ, "hi", session_id=assistant_session)
    assert refused.is_error and "ask" in text_of(refused)


async def test_out_of_credits_is_reported_for_flows_and_nothing_runs(sandbox: SandboxServer, client: Client) -> None:
    sandbox.state.update_config({"out_of_credits": "flow_session_create"})
    result = await run_flow(client, FAQ, "hi")
    assert result.is_error and "out of credits" in text_of(result) and "402" in text_of(result)
    sandbox.state.update_config({"out_of_credits": "flow_invoke"})
    result = await run_flow(client, FAQ, "hi")
    assert result.is_error and "out of credits" in text_of(result)
    assert len(calls(sandbox, "flow_invoke")) == 1  # a 402 is never retried


# -- waiting turns and respond -----------------------------------------------------------------------------------


async def test_a_question_from_a_flow_is_answered_with_respond_and_the_turn_goes_on(
    sandbox: SandboxServer, client: Client
) -> None:
    waiting = await run_flow(client, SCHEDULER, "Meet Anna about the budget")
    body = body_of(waiting)
    assert body["status"] == "waiting_for_input"
    assert body["waiting_for"]["kind"] == "hook_waiting_for_input" and "which day" in body["waiting_for"]["prompt"]
    hook_id = body["waiting_for"]["hook_id"]
    assert RESPOND.search(text_of(waiting)).groups() == (body["session_id"], hook_id)  # type: ignore[union-attr]

    answered = await client.call_tool(
        "respond", {"session_id": body["session_id"], "hook_id": hook_id, "message": "Tuesday at 10"}
    )
    done = body_of(answered)
    assert done["status"] == "completed" and 'You answered: "Tuesday at 10"' in done["answer"]
    assert done["session_id"] == body["session_id"] and text_of(answered).startswith(done["answer"])
    (resumed,) = resumes(sandbox, flowhunt_id(body["session_id"]))
    assert (resumed["hook_id"], resumed["status"], resumed["form_data"]) == (hook_id, "resumed", None)

    twice = await client.call_tool(
        "respond", {"session_id": body["session_id"], "hook_id": hook_id, "message": "Wednesday"}
    )
    assert twice.is_error and "already_received" in text_of(twice)
    # The text says how to follow the turn the first answer set going: from the question on, it shows that answer.
    follow = POLL.search(text_of(twice))
    assert follow is not None and follow.group(1) == body["session_id"]
    _, end = await poll_to_the_end(client, body["session_id"], follow.group(2))
    assert end["status"] == "completed" and 'You answered: "Tuesday at 10"' in end["answer"]
    unknown = await client.call_tool(
        "respond", {"session_id": body["session_id"], "hook_id": "hook-nobody-made", "message": "hi"}
    )
    assert unknown.is_error and "not_found" in text_of(unknown)


async def test_an_approval_is_granted_or_refused_by_the_message_and_sent_as_form_data(
    sandbox: SandboxServer, client: Client
) -> None:
    asked = body_of(await run_flow(client, EMAIL, "Thank them for the order"))
    waiting_for = asked["waiting_for"]
    assert asked["status"] == "waiting_for_input" and waiting_for["kind"] == "hitl_approval_requested"
    vague = await client.call_tool(
        "respond", {"session_id": asked["session_id"], "hook_id": waiting_for["hook_id"], "message": "maybe later"}
    )
    assert vague.is_error and "approve" in text_of(vague)
    assert resumes(sandbox, flowhunt_id(asked["session_id"])) == []  # nothing was sent
    approved = body_of(
        await client.call_tool(
            "respond", {"session_id": asked["session_id"], "hook_id": waiting_for["hook_id"], "message": "approve"}
        )
    )
    assert approved["status"] == "completed" and approved["answer"].startswith("Approved: I ran send_email")
    (sent,) = resumes(sandbox, flowhunt_id(asked["session_id"]))
    assert sent["form_data"]["approved"] is True and sent["form_data"]["hitl_id"].startswith("hitl")

    other = body_of(await run_flow(client, EMAIL, "Tell them no"))
    rejected = body_of(
        await client.call_tool(
            "respond",
            {
                "session_id": other["session_id"],
                "hook_id": other["waiting_for"]["hook_id"],
                "message": "reject: too blunt",
            },
        )
    )
    assert rejected["answer"].startswith("Rejected") and "Reason: too blunt" in rejected["answer"]
    (sent,) = resumes(sandbox, flowhunt_id(other["session_id"]))
    assert sent["form_data"] == {"approved": False, "hitl_id": sent["form_data"]["hitl_id"], "reason": "too blunt"}
    assert sent["message"] == "reject: too blunt"


async def test_a_wait_with_no_hook_gives_the_link_and_says_to_send_a_new_message(client: Client) -> None:
    result = await run_flow(client, FAQ, "connect the integration")
    body = body_of(result)
    assert body["status"] == "waiting_for_input" and body["waiting_for"]["hook_id"] is None
    text = text_of(result)
    assert "respond(" not in text and body["waiting_for"]["link"] in text
    assert f'send a new message with run_flow(flow_id="{FAQ}", message=..., session_id=' in text


async def test_respond_resumes_an_assistant_session_when_flowhunt_accepts_it(
    sandbox: SandboxServer, client: Client
) -> None:
    asked = await client.call_tool("ask", {"message": "use the hook please"})
    body = body_of(asked)
    assert body["status"] == "waiting_for_input" and "respond(" in text_of(asked)
    answered = await client.call_tool(
        "respond", {"session_id": body["session_id"], "hook_id": body["waiting_for"]["hook_id"], "message": "yes"}
    )
    done = body_of(answered)
    assert done["status"] == "completed" and 'You answered: "yes"' in done["answer"]
    assert 'ask(message=..., session_id="' in text_of(answered)


@pytest.mark.parametrize("refusal", ["404", "405", "422"])
async def test_respond_on_an_assistant_session_flowhunt_refuses_says_to_answer_in_flowhunt(
    sandbox: SandboxServer, client: Client, refusal: str
) -> None:
    body = body_of(await client.call_tool("ask", {"message": "approval needed"}))
    assert body["waiting_for"]["kind"] == "hitl_approval_requested"
    sandbox.state.update_config({"assistant_resume": refusal})
    refused = await client.call_tool(
        "respond", {"session_id": body["session_id"], "hook_id": body["waiting_for"]["hook_id"], "message": "approve"}
    )
    assert refused.is_error
    assert "cannot be resumed through the API" in text_of(refused) and "answer in FlowHunt" in text_of(refused)
    assert len(calls(sandbox, "flow_resume_hook")) == 1  # tried once, not retried


async def test_respond_that_runs_out_of_time_returns_running_and_poll_events_finishes_the_turn(
    sandbox: SandboxServer,
) -> None:
    async with Client(build_server(settings_for(sandbox, settle_seconds=2.0))) as client:
        asked = body_of(await run_flow(client, SCHEDULER, "Meet Bob"))
        running = body_of(
            await client.call_tool(
                "respond",
                {
                    "session_id": asked["session_id"],
                    "hook_id": asked["waiting_for"]["hook_id"],
                    "message": "Friday",
                    "timeout_seconds": 1,
                },
            )
        )
        assert running["status"] == "running" and running["message_id"] == ""
        _, end = await poll_to_the_end(client, running["session_id"], running["cursor"])
    # The answer came within the second; the settle window outlasted it, so the status came with poll_events.
    assert end["status"] == "completed" and 'You answered: "Friday"' in running["answer"]


# -- attachments ---------------------------------------------------------------------------------------------------


async def test_attachments_by_path_and_by_content_reach_the_flow_before_the_message(
    sandbox: SandboxServer, client: Client, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("remember the milk")
    chart = {"name": "chart.png", "content_base64": base64.b64encode(b"\x89PNG fake").decode()}
    body = body_of(await run_flow(client, ECHO, "read these", attachments=[{"path": str(notes)}, chart]))
    assert "Attachments: notes.txt, chart.png." in body["answer"]
    session = sandbox.state.get_session(flowhunt_id(body["session_id"]))
    assert session is not None
    assert [(a["file_name"], a["file_type"], a["size"]) for a in session.attachments] == [
        ("notes.txt", "text/plain", len("remember the milk")),
        ("chart.png", "image/png", len(b"\x89PNG fake")),
    ]


async def test_bad_attachments_are_refused_before_anything_is_created_or_uploaded(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 101)
    odd = tmp_path / "data.unknownext"
    odd.write_text("?")
    cases = {
        "no such file": [{"path": str(tmp_path / "absent.txt")}],
        "larger than 100 bytes": [{"path": str(big)}],
        "larger than 100 bytes ": [{"name": "big.txt", "content_base64": base64.b64encode(b"y" * 101).decode()}],
        "cannot be told from its name": [{"path": str(odd)}],
        "not valid base64": [{"name": "a.txt", "content_base64": "***"}],
        "exactly one of path and content_base64": [{"name": "a.txt"}],
    }
    async with Client(build_server(settings_for(sandbox, max_attachment_bytes=100))) as client:
        for expected, attachments in cases.items():
            result = await run_flow(client, ECHO, "hi", attachments=attachments)
            assert result.is_error and expected.strip() in text_of(result), text_of(result)
    assert calls(sandbox, "flow_session_create") == [] and calls(sandbox, "flow_attach") == []


# -- the session's other tools and resources ----------------------------------------------------------------------


async def test_poll_events_and_the_resources_work_on_flow_sessions(client: Client) -> None:
    body = body_of(await run_flow(client, FAQ, "What is your return policy?"))
    session_id = body["session_id"]
    replayed = body_of(await client.call_tool("poll_events", {"session_id": session_id, "cursor": "0"}))
    assert replayed["status"] == "completed" and replayed["answer"] == body["answer"]
    assert [event["text"] for event in replayed["events"] if event["role"] == "human"] == [
        "What is your return policy?"
    ]
    listed = [str(resource.uri) for resource in (await client.list_resources()).resources]
    assert f"flowhunt://sessions/{session_id}/transcript" in listed
    transcript = await client.read_resource(f"flowhunt://sessions/{session_id}/transcript")
    assert body["answer"] in transcript.contents[0].text  # type: ignore[union-attr]
    events = await client.read_resource(f"flowhunt://sessions/{session_id}/events")
    read = json.loads(events.contents[0].text)  # type: ignore[union-attr]
    assert read["session_id"] == session_id and len(read["events"]) == len(replayed["events"])


async def test_an_answer_flowhunt_certainly_did_not_take_can_be_sent_again(sandbox: SandboxServer) -> None:
    async with Client(build_server(settings_for(sandbox, max_retries=1))) as client:
        asked = body_of(await run_flow(client, SCHEDULER, "Meet Eve"))
        answer = {"session_id": asked["session_id"], "hook_id": asked["waiting_for"]["hook_id"], "message": "Thu"}
        sandbox.state.update_config({"rate_503": 1.0, "fault_only": "/resume-hook"})
        refused = await client.call_tool("respond", answer)
        assert refused.is_error and "responding again is safe" in text_of(refused)
        sandbox.state.update_config({"rate_503": 0.0})
        done = body_of(await client.call_tool("respond", answer))
    assert done["status"] == "completed" and [
        r["status"] for r in resumes(sandbox, flowhunt_id(done["session_id"]))
    ] == ["resumed"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_run_flow_asks_a_host_that_can_elicit_and_the_flow_goes_on_with_the_answer(
    sandbox: SandboxServer, settings: Any, mode: str
) -> None:
    user = answering("Friday at nine")
    async with in_memory(settings, mode, user) as client:
        with anyio.fail_after(30):
            result = await run_flow(client, SCHEDULER, "Meet Frank")
    body = body_of(result)
    assert body["status"] == "completed" and 'You answered: "Friday at nine"' in body["answer"]
    assert body["session_id"].startswith("flow.") and [params.message for params in user.asked] == [
        "Meeting Scheduler asks: which day and time suit you?"
    ]
    (resumed,) = resumes(sandbox, flowhunt_id(body["session_id"]))
    assert (resumed["status"], resumed["message"]) == ("resumed", "Friday at nine")
