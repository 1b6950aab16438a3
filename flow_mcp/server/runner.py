"""Following turns for the tools: ask's and run_flow's whole turn (answering the questions it stops on, when someone
can), respond's answer to a waiting turn, the one-turn-per-session rule, progress notifications, and following
that a graceful stop cuts short without losing or doubling an event (``bookkeeping.Drain``). No MCP here: progress
goes to a ``Report`` callable, questions to an ``Answer`` one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio

from flow_mcp.config import Settings, key_fingerprint
from flow_mcp.errors import HookNotResumedError, NotResumableError, TurnInProgressError
from flow_mcp.flowhunt.client import SessionKind
from flow_mcp.flowhunt.cursor import Cursor, decode_cursor
from flow_mcp.flowhunt.digest import TurnDigest
from flow_mcp.flowhunt.follow import OnEvents, Until, follow, now_ms
from flow_mcp.flowhunt.hooks import MAX_ANSWERS, Question, Reply, question_of
from flow_mcp.flowhunt.logger import get_logger
from flow_mcp.flowhunt.resume import Resumed, find_hook, reply_to, resume
from flow_mcp.flowhunt.send import send_message
from flow_mcp.flowhunt.turn import TurnProgress, settles_at, status_of
from flow_mcp.flowhunt.wire import RawEvent
from flow_mcp.replicas import Coordination, Held, InProcess, Position
from flow_mcp.server.bookkeeping import Drain
from flow_mcp.server.callers import Caller, SessionRef
from flow_mcp.server.progress import Progress, Report
from flow_mcp.server.results import RESUME_REFUSED, AskResult, continue_hint

log = get_logger()


@dataclass
class Hint:
    """What a failing tool knows so far, so that its error text can say how to resume."""

    session_id: str | None = None
    cursor: str | None = None
    invoking: bool = False  # a failure now may come after FlowHunt took the message in
    key_header: str | None = None  # the caller brought its own FlowHunt key in this header
    kind: SessionKind = "assistant"
    flow_id: str | None = None  # the published flow a new session is opened from
    resuming: str | None = None  # a failure now may come after FlowHunt took an answer: the cursor to look from


Answer = Callable[[Question], Awaitable[Reply | None]]
"""Who answers the question a turn waits on for a person (the MCP client's user, say): the reply, or None."""
Refusals = Literal["note", "raise"]


@dataclass
class Turn:
    """A turn being followed: where it stands, what it did so far, and the questions it asked."""

    message_id: str
    cursor: Cursor
    digest: TurnDigest = field(default_factory=TurnDigest)
    note: str | None = None  # why a person's answer did not reach FlowHunt
    questions: dict[str, Question] = field(default_factory=dict)  # by hook id, since the last answer

    @classmethod
    def of(cls, result: AskResult) -> Turn:
        """The turn that an earlier ask's result reported on, to be followed on from its cursor."""
        digest = TurnDigest(
            messages=list(result.messages),
            tool_calls=list(result.tool_calls),
            actions=list(result.actions),
            credits=result.credits,
            events_count=result.events_count,
        )
        return cls(result.message_id, decode_cursor(result.cursor), digest)

    def take(self, event: RawEvent) -> None:
        self.digest.add(event)
        question = question_of(event)
        if question is not None:
            self.questions[question.hook_id] = question

    def question(self) -> Question | None:
        """The question the turn waits on, when resume-hook can answer it."""
        progress = self.cursor.progress
        if progress.outcome != "waiting_for_input" or progress.waiting_for is None:
            return None
        return self.questions.get(progress.waiting_for.hook_id or "")

    def resumed(self, cursor: Cursor) -> None:
        """The question was answered: the turn goes on from ``cursor``, so its waiting end no longer holds."""
        self.cursor = cursor
        self.questions.clear()


@dataclass
class TurnRunner:
    """Runs and follows turns for the tools of one server; owns the one-turn-per-session rule."""

    settings: Settings
    drain: Drain = field(default_factory=lambda: Drain())
    shared: Coordination = field(default_factory=lambda: InProcess())
    """Where the rule's state lives: this process, or Redis that every replica shares (flow_mcp.replicas)."""

    @asynccontextmanager
    async def one_turn(
        self, caller: Caller, session: SessionRef, *, continuing: bool, position: Position = lambda: None
    ) -> AsyncIterator[Callable[[str | None], None]]:
        """Hold the session for one turn; refuse if another is still running in it.

        A new message while the last turn is still worked on would interleave the two. ``position`` says where
        the turn stands, for a call refused meanwhile. The block gets a function to record how it left the turn:
        its cursor if still running, else None.
        """
        sid, fingerprint = session.id, fingerprint_of(caller)
        held = await self.shared.hold(fingerprint, sid, check=continuing, position=position)
        if isinstance(held, Held):
            raise TurnInProgressError(_held_text(caller.public(session), held))
        recorded: list[str | None] = []
        try:
            if continuing:
                await self._refuse_if_running(caller, session)
            yield recorded.append
        finally:
            # Also on the way out of a cancelled call: the next call, on any replica, must see how it was left.
            with anyio.CancelScope(shield=True):
                if recorded:
                    await self.shared.leave(fingerprint, sid, recorded[-1])
                await held.release()

    async def _refuse_if_running(self, caller: Caller, session: SessionRef) -> None:
        sid, public, fingerprint = session.id, caller.public(session), fingerprint_of(caller)
        cursor = await self.shared.left_running(fingerprint, sid)
        if cursor is None:
            return
        # The last call returned "running": one poll tells whether that turn has ended since.
        end = await follow(
            caller.client,
            sid,
            decode_cursor(cursor),
            settings=self.settings,
            deadline=0,
            until="new_events",
            kind=session.kind,
        )
        # An answer with no tool call open counts as the end here: the settle window only guards against more.
        settle_ms = self.settings.settle_ms
        if status_of(end.progress, now_ms(), settle_ms) == "running" and settles_at(end.progress, settle_ms) is None:
            raise TurnInProgressError(
                f"The previous turn in session {public} is still running. Follow it to its end with "
                f"{continue_hint(public, cursor)}, then try again."
            )
        await self.shared.leave(fingerprint, sid, None)

    async def ask(
        self,
        caller: Caller,
        session: SessionRef,
        message: str,
        model: str | None,
        *,
        deadline: float,
        report: Report,
        hint: Hint,
        new_session: bool,
        answer: Answer | None = None,
    ) -> AskResult:
        """Send ``message`` and follow the turn until it ends or ``deadline``, reporting each event as progress.

        When the turn waits on a person, ``answer`` is asked for the reply (see ``follow_turn``).
        """
        progress = Progress(report)
        hint.invoking = True
        sent = await send_message(
            caller.client,
            session.id,
            message,
            model,
            settle_ms=self.settings.settle_ms,
            new_session=new_session,
            deadline=deadline,
            kind=session.kind,
        )
        hint.invoking, hint.cursor = False, sent.cursor.encode()
        await progress.send(f"Message sent; the {_worker(session)} is working")
        turn = Turn(sent.message_id, sent.cursor)
        turn = await self.follow_turn(
            caller, session, turn, deadline=deadline, progress=progress, hint=hint, answer=answer, events=sent.events
        )
        return self.result(caller, session, turn)

    async def resume(
        self,
        caller: Caller,
        session: SessionRef,
        so_far: AskResult,
        reply: tuple[Question, Reply],
        *,
        deadline: float,
        report: Report,
        hint: Hint,
        answer: Answer | None = None,
    ) -> AskResult:
        """Pass on the reply to the question an earlier ask's turn stopped on (``so_far``) and follow on, as ask."""
        turn = await self.follow_turn(
            caller,
            session,
            Turn.of(so_far),
            deadline=deadline,
            progress=Progress(report),
            hint=hint,
            answer=answer,
            reply=reply,
        )
        return self.result(caller, session, turn)

    async def respond(
        self,
        caller: Caller,
        session: SessionRef,
        hook_id: str,
        message: str,
        form_data: dict[str, Any] | None,
        *,
        deadline: float,
        report: Report,
        hint: Hint,
    ) -> AskResult:
        """Answer the hook a turn waits on (once), then follow the turn on until it ends or ``deadline``.

        Unlike an answer ask gets from its user, a refusal here is the caller's to know: it is raised.
        """
        waiting = await find_hook(caller.client, session.id, hook_id, kind=session.kind, deadline=deadline)
        reply = reply_to(waiting.asked, hook_id, message, form_data)
        turn = await self.follow_turn(
            caller,
            session,
            Turn("", waiting.cursor),
            deadline=deadline,
            progress=Progress(report),
            hint=hint,
            reply=reply,
            refusals="raise",
        )
        return self.result(caller, session, turn)

    async def follow_turn(
        self,
        caller: Caller,
        session: SessionRef,
        turn: Turn,
        *,
        deadline: float,
        progress: Progress,
        hint: Hint,
        answer: Answer | None = None,
        reply: tuple[Question, Reply] | None = None,
        events: Sequence[RawEvent] = (),
        refusals: Refusals = "note",
    ) -> Turn:
        """Follow ``turn`` until it ends or ``deadline``; whenever it waits on a hook and ``answer`` gives a reply,
        resume the hook and follow on, at most MAX_ANSWERS times.

        ``reply`` answers the question the turn already waits on (resumed first); ``events`` were received before
        (invoke's cached ones). The time ``answer`` takes (a person) does not count against ``deadline``.
        ``refusals``: what FlowHunt's refusal of an answer does: "note" it on the turn, which is returned waiting,
        or "raise" it.
        """

        async def on_events(batch: Sequence[RawEvent], cursor: Cursor) -> None:
            hint.cursor = cursor.encode()
            progress.cursor = turn.cursor = cursor
            for event in batch:
                turn.take(event)
                await progress.event(event)

        hint.cursor, progress.cursor = turn.cursor.encode(), turn.cursor
        if events:
            await on_events(events, turn.cursor)
        answered = 0
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(progress.heartbeats, self.settings.heartbeat_seconds)
            while True:
                if reply is None:
                    turn.cursor = await self.follow(
                        caller, session, turn.cursor, deadline=deadline, until="turn_end", on_events=on_events
                    )
                    question = turn.question()
                    if question is None or answer is None or answered >= MAX_ANSWERS:
                        break
                    asked = time.monotonic()
                    reply = await self._ask(answer, question, progress)
                    deadline += time.monotonic() - asked
                    if reply is None:
                        break
                answered += 1
                # Should passing it on fail without saying whether FlowHunt took it, the error text's cursor follows
                # the turn as if it did: then its rest is seen, else it keeps "running" and the session says more.
                hint.cursor = hint.resuming = turn.cursor.with_progress(TurnProgress()).encode()
                resumed = await self._pass_on(caller, session, turn, *reply, refusals=refusals)
                hint.resuming = None
                if resumed is None:
                    break
                turn.resumed(resumed.cursor)
                hint.cursor, progress.cursor, reply = turn.cursor.encode(), turn.cursor, None
                await progress.send(f"Answer passed on; the {_worker(session)} goes on")
                if resumed.events:
                    await on_events(resumed.events, resumed.cursor)
            tasks.cancel_scope.cancel()
        return turn

    async def _ask(self, answer: Answer, question: Question, progress: Progress) -> tuple[Question, Reply] | None:
        """The person's reply to ``question``, or None; a stopping server stops waiting for it."""
        reply = None
        with progress.asking(), self.drain.guard():
            reply = await answer(question)
        return None if reply is None else (question, reply)

    async def _pass_on(
        self, caller: Caller, session: SessionRef, turn: Turn, question: Question, reply: Reply, *, refusals: Refusals
    ) -> Resumed | None:
        """Pass ``reply`` on to FlowHunt, once (flowhunt.resume); the turn goes on from the Resumed, or, with None,
        ``turn.note`` says why not."""
        start = turn.cursor.with_progress(TurnProgress())
        try:
            resumed = await resume(
                caller.client,
                session.id,
                question.hook_id,
                reply.message,
                reply.form_data,
                kind=session.kind,
                start=start,
                settle_ms=self.settings.settle_ms,
            )
        except NotResumableError as error:
            log.info("hook_resume_refused", status_code=error.status_code)
            if refusals == "raise":
                raise
            turn.note = RESUME_REFUSED
            return None
        except HookNotResumedError as error:
            log.info("hook_not_resumed", kind=question.kind, status=error.status)
            if refusals == "raise":
                raise
            if error.status != "already_received":
                turn.note = f"FlowHunt did not take the answer: the question is {error.status[:40].replace('_', ' ')}."
                return None
            # An ask called again with an answer it already passed on (a client's retry): the turn goes on.
            resumed = Resumed(start, [])
        log.info("hook_resumed", kind=question.kind, recovered=resumed.recovered)
        return resumed

    def result(self, caller: Caller, session: SessionRef, turn: Turn) -> AskResult:
        """ask's result for ``turn`` as it stands."""
        digest, progress = turn.digest, turn.cursor.progress
        return AskResult(
            session_id=caller.public(session),
            message_id=turn.message_id,
            status=status_of(progress, turn.cursor.quiet_until(now_ms()), self.settings.settle_ms),
            answer=digest.messages[-1] if digest.messages else None,
            messages=digest.messages,
            tool_calls=digest.tool_calls,
            actions=digest.actions,
            credits=round(digest.credits, 6),
            events_count=digest.events_count,
            cursor=turn.cursor.encode(),
            waiting_for=progress.waiting_for,
            error=progress.error,
            note=turn.note,
        )

    async def follow(
        self,
        caller: Caller,
        session: SessionRef,
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

        with self.drain.guard():
            return await follow(
                caller.client,
                session.id,
                cursor,
                settings=self.settings,
                deadline=deadline,
                until=until,
                on_events=take,
                max_events=max_events,
                kind=session.kind,
            )
        return reached


def fingerprint_of(caller: Caller) -> str:
    """What the shared state keys a caller's sessions and budget by: the fingerprint of its FlowHunt key."""
    key = caller.client.settings.api_key
    return key_fingerprint(key.get_secret_value() if key is not None else "")


def _held_text(public: str, held: Held) -> str:
    """Why a second turn in a session is refused while a call follows one, and how to watch that one instead."""
    where = "on another replica " if held.elsewhere else ""
    text = f"Another call {where}is still following a turn in session {public}."
    if held.cursor:
        follow_it = continue_hint(public, held.cursor)
        return f"{text} Follow it with {follow_it}, or wait for that call to return; then try again."
    return f"{text} Wait for it to return, then try again."


def _worker(session: SessionRef) -> str:
    """Who works on a session's turns, as progress messages name it."""
    return "flow" if session.kind == "flow" else "assistant"
