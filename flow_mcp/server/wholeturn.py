"""The frame of the tools that follow a whole turn (ask, run_flow, respond): one turn per session, its span,
and a question the host's user answers inline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

import anyio
from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, InputRequiredResult

from flow_mcp.server import elicitation, tracing
from flow_mcp.server.callers import Caller, SessionRef
from flow_mcp.server.frame import AppState, session_named, state_of, tool_result, touched
from flow_mcp.server.results import ANSWER_UNUSABLE, AskResult
from flow_mcp.server.runner import Hint

Run = Callable[[], Awaitable[AskResult]]


async def whole_turn(
    ctx: Context[AppState],
    caller: Caller,
    hint: Hint,
    begin: Callable[[elicitation.Asker], Awaitable[tuple[SessionRef, Run]]],
    *,
    deadline: float,
    continuing: bool,
    text_of: Callable[[AskResult], str],
) -> CallToolResult | InputRequiredResult:
    """A whole turn for ask and run_flow: ``begin`` (given who answers questions) names the session and the run.

    A 2026-07-28 client calls again, with the same arguments, to bring the user's answer to the question the last
    call returned: then the message was sent already, and the turn goes on from where it stopped.
    """
    state = state_of(ctx)
    carried = elicitation.carried(ctx)
    asker = elicitation.Asker(ctx, state.settings, asked=carried.asked if carried else 0)
    if carried is not None:
        so_far = AskResult.model_validate(carried.so_far)
        session = session_named(caller, so_far.session_id, hint)
        if carried.reply is None:  # no usable answer: the turn still waits, as reported
            so_far = so_far.model_copy(update={"note": ANSWER_UNUSABLE}) if carried.unusable else so_far
            return tool_result(ctx, so_far, text_of)
        run: Run = partial(
            state.runner.resume,
            caller,
            session,
            so_far,
            (carried.question, carried.reply),
            deadline=deadline,
            report=ctx.report_progress,
            hint=hint,
            answer=asker,
        )
    else:
        session, run = await begin(asker)
    hint.session_id = caller.public(session)
    touched(ctx, caller, session)
    result = await one_turn(state, caller, session, hint, run, continuing=continuing or carried is not None)
    if asker.deferred is not None and result.status == "waiting_for_input":
        return asker.input_required(result)  # the client asks its user, then calls again with the answer
    if asker.note and result.status == "waiting_for_input" and result.note is None:
        result = result.model_copy(update={"note": asker.note})
    return tool_result(ctx, result, text_of)


async def one_turn(
    state: AppState, caller: Caller, session: SessionRef, hint: Hint, run: Run, *, continuing: bool
) -> AskResult:
    """``run`` as the session's one turn, recording how it left the turn (running: with its cursor)."""
    position = lambda: hint.cursor  # noqa: E731 -- read when a call refused meanwhile asks where the turn is
    async with state.runner.one_turn(caller, session, continuing=continuing, position=position) as record:
        with tracing.turn_span(hint.session_id, session.kind) as finished:
            try:
                result = await run()
            except anyio.get_cancelled_exc_class():
                # Cancelled, or the client went away: the turn goes on at FlowHunt, so the next call checks it first.
                record(hint.cursor)
                raise
            finished(result)
        record(result.cursor if result.status == "running" else None)
    return result
