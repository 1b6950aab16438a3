"""The fault-injection run: scripted turns through a real stdio server while the sandbox misbehaves.

Used by tests/e2e/test_faults.py; kept apart so the driver (what a model would do with each result) reads on its own.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp import Client

from flow_mcp.sandbox import SandboxServer

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


@dataclass
class TurnRecord:
    message: str
    via: str  # "ask" or "poll"
    session_id: str | None = None
    status: str | None = None
    answer: str | None = None
    delivered: list[dict[str, Any]] = field(default_factory=list)  # events seen through poll_events
    errors: int = 0


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
                record.status = body["status"]
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


def expected_outcome(events: list[dict[str, Any]]) -> tuple[str, str | None]:
    """The status and answer the sandbox's own record implies."""
    kinds = [event["action_type"] for event in events]
    answers = [e["metadata"]["message"] for e in events if e["action_type"] == "message" and e["event_type"] == "ai"]
    if "session_closed" in kinds:
        return "session_closed", answers[-1] if answers else None
    if "failed" in kinds:
        return "failed", None
    if WAITING_KINDS & set(kinds):
        return "waiting_for_input", None
    return "completed", answers[-1] if answers else None


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
    tool_errors_seen: int = 0
    faults: dict[str, int] = field(default_factory=dict)


def check(records: list[TurnRecord], sandbox: SandboxServer, stderr_text: str) -> Figures:
    figures = Figures(turns=len(records), faults=sandbox.state.fault_counts())
    logged = logged_event_ids(stderr_text)
    for record in records:
        figures.tool_errors_seen += record.errors
        assert record.session_id is not None
        session = sandbox.state.get_session(record.session_id)
        assert session is not None
        emitted = [event for event in sandbox.state.session_events(session) if event["visible"]]
        status, answer = expected_outcome(emitted)
        figures.wrong_status += record.status != status
        figures.wrong_answer += status == "completed" and record.answer != answer
        figures.events_checked += len(emitted)
        # Delivered once: in the server's own log of received events, and in what poll_events handed out.
        counts = {event["event_id"]: logged[(record.session_id, event["event_id"])] for event in emitted}
        if record.via == "poll":
            counts = Counter(event["event_id"] for event in record.delivered)
            stamps = [event["at"] for event in record.delivered]
            figures.out_of_order += stamps != sorted(stamps)
        figures.lost += sum(1 for event in emitted if counts.get(event["event_id"], 0) == 0)
        figures.duplicated += sum(count - 1 for count in counts.values() if count > 1)
    return figures
