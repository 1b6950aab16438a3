"""Answering a waiting turn: resume-hook, sent at most once, and where to follow the turn from afterwards.

A hook is one-shot at FlowHunt, so resume-hook is never sent twice: the client retries it only when FlowHunt
certainly did not get it (a 429, a 503, a failed connect). When its outcome is unknown (a 500, a dropped
connection, a garbled answer), the session is watched for a moment: the turn going on proves the answer arrived.

Inferred, not documented by FlowHunt: how an approval (``hitl_approval_requested``) is answered (see hooks.py);
a caller's message says "approve" or "reject: <reason>" and, unless it sends its own ``form_data``, the form of
``hooks.approval_reply`` goes with it. Also inferred: whether a Flow Assistant session takes resume-hook at all; a
404, 405 or 422 for one that exists means it does not (``NotResumableError``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from flow_mcp.errors import (
    APIError,
    FlowHuntError,
    HookNotResumedError,
    InvalidArgumentError,
    NotResumableError,
    may_have_arrived,
)
from flow_mcp.flowhunt.client import FlowHuntClient, SessionKind
from flow_mcp.flowhunt.cursor import Cursor
from flow_mcp.flowhunt.events import text_of
from flow_mcp.flowhunt.follow import absorb, replay
from flow_mcp.flowhunt.hooks import RESUME_MESSAGE_MAX, Question, Reply, approval_reply, question_of
from flow_mcp.flowhunt.logger import get_logger
from flow_mcp.flowhunt.turn import WAITING_ACTIONS, TurnProgress
from flow_mcp.flowhunt.wire import RawEvent

log = get_logger()

RESUMED = "resumed"
NOT_RESUMED = frozenset({"already_received", "expired", "not_found"})
"""What FlowHunt's workflow engine answers for a hook it did not resume."""
_ASSISTANT_REFUSALS = frozenset({404, 405, 422})
# FlowHunt may show the turn going on a moment after a failed answer; look a few times before giving up.
_LOOK_AGAIN_AFTER = (0.0, 0.5, 1.5)
# A replay ends at the first poll that brings nothing new, and a garbled answer can look like one: a question not
# seen is looked for again before the session is taken to lack it.
_REPLAYS = 3
_APPROVE = frozenset({"approve", "approved", "yes", "y", "ok", "okay"})
_REJECT = frozenset({"reject", "rejected", "no", "n", "deny", "denied"})
_FIRST_WORD = re.compile(r"\s*(\w+)\W*(.*)", re.S)


@dataclass(frozen=True)
class WaitingTurn:
    """Where a session stands before its hook is answered."""

    cursor: Cursor
    """Right after the event that asked (or after every event, when it is not found), with a fresh turn: what
    follows the answer is followed from here, and a hook answered before is seen going on from here."""
    asked: RawEvent | None
    """The event that asked, when the session shows it."""


@dataclass(frozen=True)
class Resumed:
    """A hook FlowHunt resumed, and where the turn is followed from."""

    cursor: Cursor
    events: list[RawEvent]  # what was already seen of the turn going on (when it proved an unclear answer)
    recovered: bool = False


async def find_hook(
    client: FlowHuntClient, session_id: str, hook_id: str, *, kind: SessionKind, deadline: float | None = None
) -> WaitingTurn:
    """Read the session so far: the event that asked for ``hook_id``, and the cursor right after it."""
    for _ in range(_REPLAYS):
        events, end = await replay(client, session_id, kind=kind, deadline=deadline)
        asking = [
            index
            for index, event in enumerate(events)
            if event.action_type in WAITING_ACTIONS and text_of(event.meta, "hook_id") == hook_id
        ]
        if asking:
            # replay hands events out in the cursor's order, so the cursor after the first few is where they stop
            _, after = Cursor(timestamp=0).accept(events[: asking[-1] + 1])
            return WaitingTurn(after, events[asking[-1]])
    # Not shown (a hook_id FlowHunt will call not_found, most likely): FlowHunt has the last word on it.
    return WaitingTurn(end.with_progress(TurnProgress()), None)


def reply_to(
    asked: RawEvent | None, hook_id: str, message: str, form_data: Mapping[str, Any] | None
) -> tuple[Question, Reply]:
    """The question ``hook_id`` asks (as its event says, when found) and a caller's reply to it.

    For an approval without a ``form_data`` of the caller's own, the decision is the message's first word:
    approve, yes, ok... or reject, no, deny...; the rest is the reason.
    """
    question = (question_of(asked) if asked is not None else None) or Question(kind="hook", hook_id=hook_id)
    if form_data is not None or question.kind != "approval":
        form = dict(form_data) if form_data is not None else None
        return question, Reply(message=message[:RESUME_MESSAGE_MAX], form_data=form)
    matched = _FIRST_WORD.match(message)
    word = matched.group(1).lower() if matched else ""
    if word not in _APPROVE | _REJECT:
        raise InvalidArgumentError(
            'This hook asks for an approval: send message "approve", or "reject: <reason>" (or form_data '
            '{"approved": true} / {"approved": false, "reason": "..."}).'
        )
    reason = matched.group(2).strip() if matched else ""
    reply = approval_reply(question, word in _APPROVE, reason)
    return question, Reply(message=message[:RESUME_MESSAGE_MAX], form_data=reply.form_data)


async def resume(
    client: FlowHuntClient,
    session_id: str,
    hook_id: str,
    message: str,
    form_data: Mapping[str, Any] | None,
    *,
    kind: SessionKind,
    start: Cursor,
    settle_ms: int,
    deadline: float | None = None,
) -> Resumed:
    """Answer ``hook_id`` once; raise HookNotResumedError when FlowHunt did not resume it.

    ``start`` is ``find_hook``'s cursor. When FlowHunt's answer is lost, the session is watched from there: the turn
    going on means the hook was resumed; with no sign of it, the error goes up and its text says to look first.
    """
    try:
        answer = await client.resume_hook(session_id, hook_id, message, form_data, deadline=deadline)
    except FlowHuntError as error:
        if kind == "assistant" and isinstance(error, APIError) and error.status_code in _ASSISTANT_REFUSALS:
            raise NotResumableError(error.status_code) from None
        if not may_have_arrived(error):
            raise
        return await _recover(client, session_id, error, kind=kind, start=start, settle_ms=settle_ms, deadline=deadline)
    if answer.status in NOT_RESUMED or answer.failed:
        raise HookNotResumedError(hook_id, answer.status)
    if answer.status != RESUMED:
        # FlowHunt's statuses are not all documented: the turn itself shows whether it went on.
        log.warning("resume_status_unknown", session_id=session_id, status=answer.status[:64])
    return Resumed(start, [])


async def _recover(
    client: FlowHuntClient,
    session_id: str,
    error: FlowHuntError,
    *,
    kind: SessionKind,
    start: Cursor,
    settle_ms: int,
    deadline: float | None,
) -> Resumed:
    for delay in _LOOK_AGAIN_AFTER:
        if deadline is not None and time.monotonic() + delay >= deadline:
            break
        await anyio.sleep(delay)
        try:
            batch = await client.poll(
                session_id, start.query_timestamp(), kind=kind, deadline=deadline, seen=start.delivered
            )
        except FlowHuntError:
            continue
        events, cursor = absorb(session_id, start, batch, settle_ms)
        if events:
            log.warning("resume_recovered", session_id=session_id, error_type=type(error).__name__)
            return Resumed(cursor, events, recovered=True)
    raise error
