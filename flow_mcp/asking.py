"""The work behind the tools that follow turns: ask's whole turn, the one-turn-per-session rule, and following
a turn in a way that a stopping server can cut short without losing or doubling an event. No MCP here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anyio

from flow_mcp import render
from flow_mcp.access import Caller
from flow_mcp.errors import TurnInProgressError
from flow_mcp.models import AskResult, RawEvent
from flow_mcp.poller import OnEvents, Until, follow, now_ms
from flow_mcp.progress import Progress, Report
from flow_mcp.sending import send_message
from flow_mcp.state import AppState
from flow_mcp.turns import Cursor, TurnDigest, decode_cursor, settles_at, status_of


@dataclass
class Hint:
    """What a failing tool knows so far, so that its error text can say how to resume."""

    session_id: str | None = None
    cursor: str | None = None
    invoking: bool = False  # a failure now may come after FlowHunt took the message in
    key_header: str | None = None  # the caller brought its own FlowHunt key in this header


async def ask_turn(
    state: AppState,
    caller: Caller,
    sid: str,
    message: str,
    model: str | None,
    *,
    deadline: float,
    report: Report,
    hint: Hint,
    new_session: bool,
) -> AskResult:
    """Send ``message`` and follow the turn until it ends or ``deadline``, reporting each event as progress."""
    progress = Progress(report)
    digest = TurnDigest()

    async def on_events(events: Sequence[RawEvent], cursor: Cursor) -> None:
        hint.cursor = cursor.encode()
        progress.cursor = cursor
        for event in events:
            digest.add(event)
            await progress.event(event)

    hint.invoking = True
    sent = await send_message(
        caller.client, sid, message, model, settle_ms=state.settings.settle_ms, new_session=new_session
    )
    cursor = sent.cursor
    hint.invoking = False
    await progress.send("Message sent; the assistant is working")
    if sent.events:
        await on_events(sent.events, cursor)
    hint.cursor, progress.cursor = cursor.encode(), cursor
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(progress.heartbeats, state.settings.heartbeat_seconds)
        cursor = await follow_until_drained(
            state, caller, sid, cursor, deadline=deadline, until="turn_end", on_events=on_events
        )
        tasks.cancel_scope.cancel()
    turn = cursor.progress
    return AskResult(
        session_id=caller.public(sid),
        message_id=sent.message_id,
        status=status_of(turn, now_ms(), state.settings.settle_ms),
        answer=digest.messages[-1] if digest.messages else None,
        messages=digest.messages,
        tool_calls=digest.tool_calls,
        actions=digest.actions,
        credits=round(digest.credits, 6),
        events_count=digest.events_count,
        cursor=cursor.encode(),
        waiting_for=turn.waiting_for,
        error=turn.error,
    )


async def refuse_if_a_turn_runs(state: AppState, caller: Caller, sid: str) -> None:
    """One turn at a time per session: a new message while the last one is still worked on would interleave."""
    if state.turns.is_followed(sid):
        raise TurnInProgressError(
            f"Another ask is still following a turn in session {caller.public(sid)}. Wait for it to return, then "
            "ask again."
        )
    cursor = state.turns.unfinished(sid)
    if cursor is None:
        return
    # The last ask returned "running": one poll tells whether that turn has ended since.
    end = await follow(
        caller.client, sid, decode_cursor(cursor), settings=state.settings, deadline=0, until="new_events"
    )
    # An answer with no tool call open counts as the end here: the settle window only guards against more to come.
    still_running = status_of(end.progress, now_ms(), state.settings.settle_ms) == "running"
    if still_running and settles_at(end.progress, state.settings.settle_ms) is None:
        raise TurnInProgressError(
            f"The previous turn in session {sid} is still running. Follow it to its end with "
            f"{render.continue_hint(caller.public(sid), cursor)}, then ask again."
        )
    state.turns.finished(sid, None)


async def follow_until_drained(
    state: AppState,
    caller: Caller,
    sid: str,
    cursor: Cursor,
    *,
    deadline: float,
    until: Until,
    on_events: OnEvents,
    max_events: int | None = None,
) -> Cursor:
    """follow(), cut short when a stopping server's grace period ends: then the cursor so far comes back."""
    reached = cursor

    async def take(events: Sequence[RawEvent], at: Cursor) -> None:
        nonlocal reached
        # A batch is handed on whole, with the cursor after it, or not at all: nothing lost, nothing doubled.
        with anyio.CancelScope(shield=True):
            await on_events(events, at)
            reached = at

    with state.drain.guard():
        return await follow(
            caller.client,
            sid,
            cursor,
            settings=state.settings,
            deadline=deadline,
            until=until,
            on_events=take,
            max_events=max_events,
        )
    return reached
