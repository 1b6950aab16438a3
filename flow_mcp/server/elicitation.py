"""Asking the MCP host's user to answer a turn that waits on a person (MCP elicitation), on both protocol
generations that mcp 2.3 serves.

- 2025-11-25 (handshake era): the tool sends ``elicitation/create`` to the client in the middle of the call, on
  the connection's back-channel, and waits for the answer (``Asker`` does, for FLOW_MCP_ELICITATION_TIMEOUT at
  most). A stateless HTTP connection has no back-channel, so there nobody is asked.
- 2026-07-28: a request has no back-channel. The tool returns ``InputRequiredResult`` (``input_required``) with
  the question and a ``requestState``; the client asks its user and calls the tool again with the same arguments,
  the answer (``inputResponses``) and the state, which ``carried`` reads back. The SDK seals the state: encrypted,
  bound to the tool, its arguments and the caller's token, and expiring; an answer that comes later than
  FLOW_MCP_ELICITATION_TIMEOUT is not used.

Either way only a client that declared the (form) elicitation capability is asked.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

import anyio
from mcp.server.elicitation import AcceptedElicitation, render_elicitation_schema
from mcp.server.mcpserver import Context
from mcp.server.request_state import RequestStateSecurity
from mcp.shared.exceptions import MCPError
from mcp_types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError

from flow_mcp.config import Settings
from flow_mcp.errors import InvalidArgumentError
from flow_mcp.flowhunt.digest import truncate
from flow_mcp.flowhunt.hooks import MAX_ANSWERS, RESUME_MESSAGE_MAX, Question, Reply, approval_reply
from flow_mcp.flowhunt.logger import get_logger
from flow_mcp.server.callers import HttpAccess, server_secret
from flow_mcp.server.results import ANSWER_UNUSABLE

log = get_logger()

INPUT_REQUIRED_VERSION = "2026-07-28"
"""The first protocol version whose tools ask through InputRequiredResult instead of a request of their own."""
ANSWER_KEY = "answer"  # the key of the one input request, and of its response
LATE_ANSWER_SECONDS = 600.0


class HookForm(BaseModel):
    answer: str = Field(title="Your answer", min_length=1, max_length=RESUME_MESSAGE_MAX)


class ApprovalForm(BaseModel):
    decision: Literal["approve", "reject"] = Field(title="Approve or reject")
    reason: str | None = Field(default=None, title="Reason (optional)", max_length=2000)


def form_of(question: Question) -> tuple[str, type[HookForm] | type[ApprovalForm]]:
    """What the user is shown for ``question``, and the form they fill in."""
    if question.kind == "hook":
        return question.prompt or "FlowHunt's Flow Assistant is waiting for your input.", HookForm
    lines = [f"FlowHunt asks for your approval to run {question.tool_name or 'a tool'}."]  # an assistant or a flow
    if question.tool_description:
        lines.append(question.tool_description)
    if question.tool_args is not None:
        arguments = json.dumps(question.tool_args, ensure_ascii=False, sort_keys=True, default=str)
        lines.append(f"Arguments: {truncate(arguments, 2000)}")
    return "\n".join(lines), ApprovalForm


def reply_of(question: Question, content: dict[str, Any] | BaseModel | None) -> Reply | None:
    """The reply a filled-in form stands for; None when it does not fit the form."""
    _, form = form_of(question)
    try:
        filled = form.model_validate(content.model_dump() if isinstance(content, BaseModel) else content or {})
    except PydanticValidationError:
        log.info("elicitation_answer_unusable", kind=question.kind)
        return None
    if isinstance(filled, HookForm):
        return Reply(message=filled.answer)
    return approval_reply(question, filled.decision == "approve", filled.reason)


def uses_input_required(ctx: Context[Any]) -> bool:
    """True on 2026-07-28 connections, where the tool returns InputRequiredResult and is called again."""
    version = ctx.protocol_version
    return version is not None and is_version_at_least(version, INPUT_REQUIRED_VERSION)


def can_ask(ctx: Context[Any]) -> bool:
    """The client declared form elicitation, and this call has a way to ask it."""
    capabilities = ctx.client_capabilities
    declared = capabilities.elicitation if capabilities is not None else None
    # A bare `elicitation: {}` (from before modes existed) means form; url alone does not.
    if declared is None or (declared.form is None and declared.url is not None):
        return False
    return uses_input_required(ctx) or ctx.session.can_send_request


class Asker:
    """Asks the host's user the question a turn waits on: at once on 2025-11-25, by deferring on 2026-07-28.

    Called by the turn runner; returns the reply, or None when there is none (declined, cancelled, timed out,
    switched off, not supported, or deferred: then ``deferred`` holds the question for ``input_required``).
    """

    def __init__(self, ctx: Context[Any], settings: Settings, *, asked: int = 0) -> None:
        self._ctx = ctx
        self._settings = settings
        self._asked = asked  # questions asked earlier in this chain of calls (2026-07-28)
        self.deferred: Question | None = None
        self.note: str | None = None  # why an answer the user gave was not used

    async def __call__(self, question: Question) -> Reply | None:
        if not self._settings.elicitation or self._asked >= MAX_ANSWERS or not can_ask(self._ctx):
            return None
        self._asked += 1
        if uses_input_required(self._ctx):
            self.deferred = question
            return None
        return await self._ask_now(question)

    async def _ask_now(self, question: Question) -> Reply | None:
        message, form = form_of(question)
        log.info("elicitation_asked", kind=question.kind)
        with anyio.move_on_after(self._settings.elicitation_timeout):
            try:
                answer = await self._ctx.elicit(message, form)
            except (MCPError, ValueError) as error:  # refused by the client, no back-channel, or content off-form
                log.info("elicitation_failed", error_type=type(error).__name__)
                # The SDK raises ValueError for an accepted answer that does not fit the form.
                self.note = ANSWER_UNUSABLE if isinstance(error, ValueError) else None
                return None
            log.info("elicitation_answered", action=answer.action)
            if not isinstance(answer, AcceptedElicitation):
                return None
            reply = reply_of(question, answer.data)
            self.note = None if reply is not None else ANSWER_UNUSABLE
            return reply
        log.info("elicitation_timed_out")
        return None

    def input_required(self, so_far: BaseModel) -> InputRequiredResult:
        """The result that asks a 2026-07-28 client the deferred question; ``so_far`` is the tool's result so far."""
        assert self.deferred is not None, "only after the question was deferred"
        message, form = form_of(self.deferred)
        request = ElicitRequest(
            params=ElicitRequestFormParams(message=message, requested_schema=render_elicitation_schema(form))
        )
        state = Carried(
            question=self.deferred,
            so_far=so_far.model_dump(mode="json"),
            asked=self._asked,
            answer_by=time.time() + self._settings.elicitation_timeout,
        )
        return InputRequiredResult(input_requests={ANSWER_KEY: request}, request_state=state.model_dump_json())


class Carried(BaseModel):
    """What one call of a tool leaves in requestState for the next (2026-07-28), and the user's reply to it."""

    v: Literal[1] = 1
    question: Question
    so_far: dict[str, Any] = Field(description="The tool's result when it asked: the turn so far, its cursor.")
    asked: int = Field(description="Questions asked so far in this chain of calls, to bound it.")
    answer_by: float = Field(description="Epoch seconds after which an answer is not used.")
    reply: Reply | None = None  # filled in from the client's answer, never carried
    unusable: bool = False  # the user accepted with an answer that does not fit the form; never carried


def carried(ctx: Context[Any]) -> Carried | None:
    """On a call that brings back a requestState: what the call before left, with the user's reply (None if no
    usable answer: declined, cancelled or off-form). None on a first call."""
    if ctx.request_state is None:
        return None
    try:
        state = Carried.model_validate_json(ctx.request_state)
    except PydanticValidationError:
        # Sealed by this server's key, so only another version of flow_mcp could have made it.
        raise InvalidArgumentError(
            "This call carries the state of an earlier one that this server cannot read: send the message again "
            "with ask(message=..., session_id=...) or follow the session with poll_events."
        ) from None
    answer = (ctx.input_responses or {}).get(ANSWER_KEY)
    if time.time() > state.answer_by:
        log.info("elicitation_timed_out")
    elif isinstance(answer, ElicitResult):
        log.info("elicitation_answered", action=answer.action)
        if answer.action == "accept":
            state.reply = reply_of(state.question, answer.content)
            state.unusable = state.reply is None
    return state


def state_security(settings: Settings, http: HttpAccess | None) -> RequestStateSecurity:
    """How the SDK seals requestState: over HTTP under a key from the server's secret, so that any replica opens
    it; on stdio (and without a secret) under a key of this process. Answerable for FLOW_MCP_ELICITATION_TIMEOUT."""
    # Longer than the time to answer: a late answer still opens, and gets the turn back waiting
    # (Carried.answer_by); only a much later one is refused by the SDK, as an invalid request.
    ttl = settings.elicitation_timeout + LATE_ANSWER_SECONDS
    secret = server_secret(settings, http.key_from_client) if http is not None else None
    if secret is None:
        return RequestStateSecurity.ephemeral(ttl=ttl)
    # The SDK derives its own key from this (HKDF); the label keeps it apart from the handle key of the same secret.
    return RequestStateSecurity(keys=[f"flow-mcp request state\0{secret.get_secret_value()}"], ttl=ttl)
