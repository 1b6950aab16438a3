"""A turn that waits on a person: the question a waiting event asks, and the reply that answers it. Pure, no I/O.

FlowHunt answers a waiting hook with ``POST /v2/flows/sessions/{id}/resume-hook {hook_id, message, form_data?}``.
How an approval is expressed there is undocumented; the form below follows FlowHunt's agent-team API
(``approved``, ``hitl_id``, a reason) and is inferred, not confirmed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from flow_mcp.flowhunt.events import text_of
from flow_mcp.flowhunt.wire import RawEvent

RESUME_MESSAGE_MAX = 65_536  # FlowHunt's limit on a resume's message
MAX_ANSWERS = 5
"""Questions of one turn put to a person for one ask (with the calls that bring the answers back): a turn that
keeps asking is returned waiting instead of holding the call forever."""


class Question(BaseModel):
    """What a waiting event asks of a person, with what a reply to it needs."""

    kind: Literal["hook", "approval"]
    hook_id: str
    prompt: str | None = None
    hitl_id: str | None = None
    tool_name: str | None = None
    tool_args: Any = None
    tool_description: str | None = None


class Reply(BaseModel):
    """A person's answer to a Question, as resume-hook takes it."""

    message: str = Field(max_length=RESUME_MESSAGE_MAX)
    form_data: dict[str, Any] | None = None


def question_of(event: RawEvent) -> Question | None:
    """The question of a waiting event that resume-hook can answer (one with a hook_id), else None."""
    meta, kind = event.meta, event.action_type
    hook_id = text_of(meta, "hook_id")
    if hook_id is None or kind not in ("hook_waiting_for_input", "hitl_approval_requested"):
        return None
    if kind == "hook_waiting_for_input":
        return Question(kind="hook", hook_id=hook_id, prompt=text_of(meta, "prompt_message"))
    return Question(
        kind="approval",
        hook_id=hook_id,
        hitl_id=text_of(meta, "hitl_id"),
        tool_name=text_of(meta, "tool_name"),
        tool_args=meta.get("tool_args"),
        tool_description=text_of(meta, "tool_description"),
    )


def approval_reply(question: Question, approved: bool, reason: str | None = None) -> Reply:
    """The reply that approves or rejects what ``question`` asks to run."""
    reason = (reason or "").strip() or None
    message = "approve" if approved else f"reject: {reason}" if reason else "reject"
    form: dict[str, Any] = {"approved": approved, "hitl_id": question.hitl_id, "reason": reason}
    return Reply(message=message[:RESUME_MESSAGE_MAX], form_data=form)
