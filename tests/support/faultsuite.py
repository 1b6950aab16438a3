"""The fault-injection run: scripted turns through a real stdio server while the sandbox misbehaves.

Used by tests/e2e/test_faults.py; kept apart so the driver (what a model would do with each result) reads on its own.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp import Client

from flow_mcp.sandbox import DEFAULT_FLOWS, SandboxServer

from .servers import text_of

FAULT_FIGURES = "fault injection"
"""The user property under which the run leaves its figures; the conftest shows them at the end of the run."""

# What a model reads in an error text: the exact call that resumes a turn.
RESUME = re.compile(r'poll_events\(session_id="([^"]+)", cursor="([^"]+)"')
WAITING_KINDS = {"hook_waiting_for_input", "hitl_approval_requested", "integration_missing", "file_access_required"}
MESSAGES = (
    "Build flow {i}",
    "please fail {i}",
    "use the hook {i}",
    "multi answer {i}",
    "unknown stuff {i}",
    "events:25 n{i}",
)


FAQ, SCHEDULER, EMAIL, ECHO = (DEFAULT_FLOWS[i].id for i in (0, 4, 5, 6))
# Published flows' turns: (flow, message); the Scheduler asks and the Email sender wants an approval (both answered
# with respond), the Echo flow gets an attachment, and the assistant's trigger words work in flows too.
FLOW_TURNS = (
    (FAQ, "Question {i}"),
    (SCHEDULER, "Meet {i}"),
    (EMAIL, "Email {i}"),
    (ECHO, "Echo {i}"),
    (FAQ, "please fail {i}"),
    (FAQ, "use the hook {i}"),
    (FAQ, "events:25 n{i}"),
)
ATTACHMENT = {"name": "notes.txt", "content_base64": base64.b64encode(b"remember the milk").decode()}


@dataclass
class TurnRecord:
    message: str
    via: str  # "ask", "poll" or "flow" (run_flow, then respond to a question or an approval)
    flow_id: str | None = None
    session_id: str | None = None
    status: str | None = None
    answer: str | None = None
    delivered: list[dict[str, Any]] = field(default_factory=list)  # events seen through poll_events
    errors: int = 0
    last_text: str = ""  # the text of the result that ended the turn (a waiting one says how to answer)


async def follow(client: Client, record: TurnRecord, session_id: str, cursor: str) -> None:
    """poll_events until the turn ends, as a model told to continue would; transient tool errors are retried."""
    record.session_id = session_id
    with anyio.fail_after(120):
        while True:
            result = await client.call_tool(
                "poll_events", {"session_id": session_id, "cursor": cursor, "wait_seconds": 5}
            )
            if result.is_error:
                record.errors += 1
                resume = RESUME.search(text_of(result))
                cursor = resume.group(2) if resume else cursor
                continue
            body = result.structured_content or {}
            record.delivered += body["events"]
            cursor = body["cursor"]
            record.answer = body.get("answer") or record.answer
            if body["status"] != "running":
                record.status, record.last_text = body["status"], text_of(result)
                return


async def arrived(client: Client, session_id: str, message: str) -> bool:
    """What the error text asks a model to do before resending: look for the message in the session."""
    result = await client.call_tool("poll_events", {"session_id": session_id, "cursor": "0", "wait_seconds": 2})
    if result.is_error:
        return False
    events = (result.structured_content or {})["events"]
    return any(event["role"] == "human" and event["text"] == message for event in events)


async def run_ask_turn(client: Client, record: TurnRecord) -> None:
    session_id: str | None = None
    with anyio.fail_after(180):
        while True:
            arguments = {"message": record.message, "timeout_seconds": 20}
            if session_id:
                arguments["session_id"] = session_id
            result = await client.call_tool("ask", arguments)
            body = result.structured_content or {}
            if not result.is_error:
                record.session_id, record.answer = body["session_id"], body["answer"]
                if body["status"] != "running":
                    record.status = body["status"]
                    return
                await follow(client, record, body["session_id"], body["cursor"])
                return
            record.errors += 1
            resume = RESUME.search(text_of(result))
            if resume and resume.group(2) != "0":  # the turn runs on; the text says how to pick it up
                await follow(client, record, resume.group(1), resume.group(2))
                return
            if resume:  # "may have reached FlowHunt: check with poll_events(cursor="0") before sending it again"
                session_id = resume.group(1)
                if await arrived(client, session_id, record.message):
                    await follow(client, record, session_id, "0")  # the session holds this turn only
                    return
            # Nothing was started, or the message is not there: ask again (in the same session if one exists).


async def run_flow_turn(client: Client, record: TurnRecord) -> None:
    """run_flow as a model would (as run_ask_turn does ask); then answer a question or an approval with respond."""
    assert record.flow_id is not None
    session_id: str | None = None
    with anyio.fail_after(180):
        while record.status is None:
            arguments: dict[str, Any] = {"flow_id": record.flow_id, "message": record.message, "timeout_seconds": 20}
            if session_id:
                arguments["session_id"] = session_id
            elif record.flow_id == ECHO:
                arguments["attachments"] = [ATTACHMENT]  # once per session: a retry in the session does not resend
            result = await client.call_tool("run_flow", arguments)
            body = result.structured_content or {}
            if not result.is_error:
                record.session_id, record.answer = body["session_id"], body["answer"]
                if body["status"] == "running":
                    await follow(client, record, body["session_id"], body["cursor"])
                else:
                    record.status, record.last_text = body["status"], text_of(result)
                break
            record.errors += 1
            resume = RESUME.search(text_of(result))
            if resume and resume.group(2) != "0":
                await follow(client, record, resume.group(1), resume.group(2))
            elif resume:
                session_id = resume.group(1)
                if await arrived(client, session_id, record.message):
                    await follow(client, record, session_id, "0")
        if record.status == "waiting_for_input" and record.session_id:
            await answer_hook(client, record, record.session_id)


ANSWER = re.compile(r'respond\(session_id="([^"]+)", hook_id="([^"]+)"')


async def answer_hook(client: Client, record: TurnRecord, session_id: str) -> None:
    """Answer what the turn waits for, once, whatever the faults: respond again only when the text says it is safe."""
    hook = ANSWER.search(record.last_text)
    if hook is None:
        return  # nothing to answer (an integration link): the turn stays waiting
    approval = "hitl_approval_requested" in record.last_text
    arguments = {"session_id": session_id, "hook_id": hook.group(2), "message": "approve" if approval else "Monday"}
    record.status = None
    while True:
        result = await client.call_tool("respond", {**arguments, "timeout_seconds": 20})
        body = result.structured_content or {}
        if not result.is_error:
            record.answer = body["answer"]
            if body["status"] == "running":
                await follow(client, record, session_id, body["cursor"])
            else:
                record.status = body["status"]
            return
        record.errors += 1
        text = text_of(result)
        resume = RESUME.search(text)
        if resume and ("was already answered" in text or "may still be running" in text):
            await follow(client, record, session_id, resume.group(2))  # the answer went in: follow the turn
            return
        if (
            resume
            and "may have reached FlowHunt" in text
            and await went_on(client, record, session_id, resume.group(2))
        ):
            return
        # FlowHunt did not take the answer, or nothing came of it: answering again is what the text advises.


async def went_on(client: Client, record: TurnRecord, session_id: str, cursor: str) -> bool:
    """Whether a turn moves on from ``cursor`` within a few polls; if so it is followed to its end."""
    for _ in range(3):
        result = await client.call_tool("poll_events", {"session_id": session_id, "cursor": cursor, "wait_seconds": 3})
        if result.is_error:
            record.errors += 1
            continue
        body = result.structured_content or {}
        if body["events"]:
            record.answer = body.get("answer") or record.answer
            if body["status"] == "running":
                await follow(client, record, session_id, body["cursor"])
            else:
                record.status = body["status"]
            return True
    return False


async def run_poll_turn(client: Client, record: TurnRecord) -> None:
    with anyio.fail_after(180):
        session_id = None
        while session_id is None:
            created = await client.call_tool("create_session", {})
            if created.is_error:
                record.errors += 1
                continue
            session_id = (created.structured_content or {})["session_id"]
        while True:
            invoked = await client.call_tool("invoke", {"session_id": session_id, "message": record.message})
            if not invoked.is_error:
                await follow(client, record, session_id, (invoked.structured_content or {})["cursor"])
                return
            record.errors += 1
            if "may have reached FlowHunt" in text_of(invoked) and await arrived(client, session_id, record.message):
                await follow(client, record, session_id, "0")  # the session holds this turn only
                return


def expected_outcome(events: list[dict[str, Any]], resumed: Collection[str] = ()) -> tuple[str, str | None]:
    """The status and answer the sandbox's own record implies: of the turn after the last hook resumed, if any."""
    answered = [i for i, event in enumerate(events) if _hook_of(event) in resumed]
    if answered:
        events = events[answered[-1] + 1 :]
    kinds = [event["action_type"] for event in events]
    answers = [e["metadata"]["message"] for e in events if e["action_type"] == "message" and e["event_type"] == "ai"]
    if "session_closed" in kinds:
        return "session_closed", answers[-1] if answers else None
    if "failed" in kinds:
        return "failed", None
    if WAITING_KINDS & set(kinds):
        return "waiting_for_input", None
    return "completed", answers[-1] if answers else None


def _hook_of(event: dict[str, Any]) -> object:
    metadata = event["metadata"]
    return metadata.get("hook_id") if isinstance(metadata, dict) else None


def logged_event_ids(stderr_text: str) -> Counter[tuple[str, str]]:
    """(session_id, event_id) of every flowhunt_event line the server logged."""
    seen: Counter[tuple[str, str]] = Counter()
    for line in stderr_text.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == "flowhunt_event":
                seen[(entry["session_id"], entry["event_id"])] += 1
    return seen


@dataclass
class Figures:
    turns: int = 0
    events_checked: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong_status: int = 0
    wrong_answer: int = 0
    out_of_order: int = 0
    resumes_doubled: int = 0
    attachments_doubled: int = 0
    tool_errors_seen: int = 0
    faults: dict[str, int] = field(default_factory=dict)


def check(records: list[TurnRecord], sandbox: SandboxServer, stderr_text: str) -> Figures:
    figures = Figures(turns=len(records), faults=sandbox.state.fault_counts())
    logged = logged_event_ids(stderr_text)
    for record in records:
        figures.tool_errors_seen += record.errors
        assert record.session_id is not None
        session_id = record.session_id.removeprefix("flow.")
        session = sandbox.state.get_session(session_id)
        assert session is not None
        emitted = [event for event in sandbox.state.session_events(session) if event["visible"]]
        hooks = Counter(resume["hook_id"] for resume in sandbox.state.session_resumes(session))
        figures.resumes_doubled += sum(count - 1 for count in hooks.values())
        figures.attachments_doubled += max(len(session.attachments) - 1, 0)
        resumed = {r["hook_id"] for r in sandbox.state.session_resumes(session) if r["status"] == "resumed"}
        status, answer = expected_outcome(emitted, resumed)
        figures.wrong_status += record.status != status
        # A poisoned text (a lone surrogate, invalid UTF-8) arrives with U+FFFD in place of the poison.
        got = record.answer.replace("\ufffd", "") if record.answer is not None else None
        figures.wrong_answer += status == "completed" and got != answer
        figures.events_checked += len(emitted)
        # Delivered once: in the server's own log of received events, and in what poll_events handed out.
        counts = {event["event_id"]: logged[(session_id, event["event_id"])] for event in emitted}
        if record.via == "poll":
            counts = Counter(event["event_id"] for event in record.delivered)
            stamps = [event["at"] for event in record.delivered]
            figures.out_of_order += stamps != sorted(stamps)
        figures.lost += sum(1 for event in emitted if counts.get(event["event_id"], 0) == 0)
        figures.duplicated += sum(count - 1 for count in counts.values() if count > 1)
    return figures
