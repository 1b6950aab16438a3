"""runner.py: ask's whole turn, the one-turn-per-session rule, progress numbering and heartbeats, the graceful stop.

FlowHunt is a MockTransport (tests/support/stub.py): a turn's events are stamped after its message and show up as
time passes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence

import anyio
import pytest

from flow_mcp.errors import TurnInProgressError
from flow_mcp.flowhunt.client import FlowHuntClient
from flow_mcp.flowhunt.cursor import Cursor, decode_cursor
from flow_mcp.flowhunt.turn import TurnProgress
from flow_mcp.flowhunt.wire import RawEvent
from flow_mcp.replicas import Held, InProcess
from flow_mcp.server.bookkeeping import Drain
from flow_mcp.server.callers import Caller, SessionRef
from flow_mcp.server.progress import Progress
from flow_mcp.server.runner import Hint, TurnRunner, fingerprint_of

from ..support.stub import SESSION, StubFlowHunt, stub_settings

pytestmark = pytest.mark.anyio

REF = SessionRef(SESSION)  # the stub's session, as the runner names one: an assistant's


class Reports:
    """A ``Report`` that keeps every progress notification."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[float, float | None, str | None]] = []
        self.fail = fail

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.sent.append((progress, total, message))
        if self.fail:
            raise ConnectionError("the client went away")

    @property
    def messages(self) -> list[str | None]:
        return [message for _, _, message in self.sent]


@pytest.fixture
def stub() -> StubFlowHunt:
    return StubFlowHunt()


@pytest.fixture
async def caller(stub: StubFlowHunt) -> AsyncIterator[Caller]:
    async with FlowHuntClient(stub_settings(), transport=stub.transport) as client:
        yield Caller(client, "tester")


# -- ask -------------------------------------------------------------------------------------------


async def test_ask_sends_the_message_follows_the_turn_and_reports_each_event_as_numbered_progress(
    stub: StubFlowHunt, caller: Caller
) -> None:
    stub.then(20, "v3_tool_call_start", tool_name="search_docs")
    stub.then(40, "v3_tool_call_end", tool_name="search_docs", tool_response="found")
    stub.then(60, "message", message="Here is your bot.")
    reports, hint = Reports(), Hint()
    with anyio.fail_after(5):
        result = await TurnRunner(stub_settings()).ask(
            caller, REF, "Build a bot", None, deadline=time.monotonic() + 5, report=reports, hint=hint,
            new_session=True,
        )  # fmt: skip
    assert result.status == "completed" and result.answer == "Here is your bot."
    assert [call.name for call in result.tool_calls] == ["search_docs"] and result.events_count == 4  # with ours
    assert reports.messages[:2] == ["Message sent; the assistant is working", "Message received"]
    assert "Calling tool search_docs" in reports.messages and reports.messages[-1] == "Answer ready"
    assert [number for number, _, _ in reports.sent] == list(range(1, len(reports.sent) + 1))
    # A failure from here on would tell how to resume: from the last batch handed out.
    assert hint.cursor and decode_cursor(hint.cursor).timestamp == decode_cursor(result.cursor).timestamp
    assert not hint.invoking


async def test_ask_at_its_deadline_returns_running_with_a_cursor_and_heartbeats_name_the_open_tool(
    stub: StubFlowHunt, caller: Caller
) -> None:
    stub.then(10, "v3_tool_call_start", tool_name="run_flow")  # a tool that outlasts the ask
    reports = Reports()
    with anyio.fail_after(5):
        result = await TurnRunner(stub_settings(heartbeat_seconds=0.1)).ask(
            caller, REF, "Run it", None, deadline=time.monotonic() + 0.8, report=reports, hint=Hint(),
            new_session=True,
        )  # fmt: skip
    assert result.status == "running" and result.cursor
    beats = [m for m in reports.messages if m and m.startswith("Still working")]
    assert beats and "running run_flow" in beats[-1]  # once the tool's start is in, the beats name it


# -- one turn per session --------------------------------------------------------------------------


async def test_a_session_an_ask_is_following_refuses_a_second_turn_without_asking_flowhunt(
    stub: StubFlowHunt, caller: Caller
) -> None:
    runner = TurnRunner(stub_settings())
    async with runner.one_turn(caller, REF, continuing=False) as record:
        with pytest.raises(TurnInProgressError):
            async with runner.one_turn(caller, REF, continuing=True):
                pass
        record(None)
    async with runner.one_turn(caller, REF, continuing=True):
        pass  # the first ask is done: the session is free again
    assert stub.requests == []


async def test_a_turn_an_ask_left_running_is_polled_once_and_refuses_until_it_has_ended(
    stub: StubFlowHunt, caller: Caller
) -> None:
    runner = TurnRunner(stub_settings())
    stub.add("v3_tool_call_start", tool_name="run_flow")
    left = Cursor(timestamp=0).encode()
    async with runner.one_turn(caller, REF, continuing=False) as record:
        record(left)
    with pytest.raises(TurnInProgressError) as refused:
        async with runner.one_turn(caller, REF, continuing=True):
            pass
    assert left in str(refused.value) and "poll_events" in str(refused.value)  # says how to follow it
    left_now = await runner.shared.left_running(fingerprint_of(caller), SESSION)
    assert left_now == left and len(stub.paths("invocation_response")) == 1
    stub.add("v3_tool_call_end", tool_name="run_flow")
    stub.answer()  # an answer with no tool open ends the turn for this rule, settle window or not
    async with runner.one_turn(caller, REF, continuing=True):
        pass
    assert await runner.shared.left_running(fingerprint_of(caller), SESSION) is None


async def test_a_new_session_is_never_checked_for_a_running_turn(stub: StubFlowHunt, caller: Caller) -> None:
    runner = TurnRunner(stub_settings())
    await runner.shared.leave(fingerprint_of(caller), SESSION, Cursor(timestamp=0).encode())
    async with runner.one_turn(caller, REF, continuing=False):
        pass
    assert stub.requests == []


async def test_a_refusal_says_where_the_running_turn_stands_so_the_caller_can_follow_it(
    stub: StubFlowHunt, caller: Caller
) -> None:
    runner = TurnRunner(stub_settings())
    here = Cursor(timestamp=0).encode()
    async with runner.one_turn(caller, REF, continuing=False, position=lambda: here):
        with pytest.raises(TurnInProgressError) as refused:
            async with runner.one_turn(caller, REF, continuing=True):
                pass
    assert here in str(refused.value) and "poll_events" in str(refused.value)


async def test_in_process_holds_count_nested_holders_and_forget_the_oldest_turns_left_running() -> None:
    shared = InProcess()
    first = await shared.hold("k", "s", check=False, position=lambda: None)
    second = await shared.hold("k", "s", check=False, position=lambda: None)
    assert not isinstance(first, Held) and not isinstance(second, Held)
    await second.release()
    assert isinstance(await shared.hold("k", "s", check=True, position=lambda: None), Held)
    await first.release()
    assert not isinstance(await shared.hold("k", "s", check=True, position=lambda: None), Held)
    assert not isinstance(await shared.hold("other key", "s", check=True, position=lambda: None), Held)
    for number in range(1001):
        await shared.leave("k", f"s{number}", f"cursor-{number}")
    assert await shared.left_running("k", "s0") is None
    assert await shared.left_running("k", "s1000") == "cursor-1000"
    await shared.leave("k", "s1000", None)
    assert await shared.left_running("k", "s1000") is None


# -- progress --------------------------------------------------------------------------------------


async def test_progress_numbers_only_grow_even_when_the_client_is_gone() -> None:
    reports = Reports(fail=True)
    progress = Progress(reports)
    for text in ("one", "two", "three"):
        await progress.send(text)
    assert reports.sent == [(1, None, "one"), (2, None, "two"), (3, None, "three")]


async def test_heartbeats_come_while_nothing_else_is_sent_and_keep_the_numbering() -> None:
    reports = Reports()
    progress = Progress(reports)
    await progress.send("Message sent")
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(progress.heartbeats, 0.05)
        await anyio.sleep(0.5)
        tasks.cancel_scope.cancel()
    assert reports.messages[0] == "Message sent"
    assert len(reports.sent) >= 3 and all(m == "Still working (0 s)" for m in reports.messages[1:])
    assert [number for number, _, _ in reports.sent] == list(range(1, len(reports.sent) + 1))


async def test_a_heartbeat_names_the_tools_the_turn_is_running() -> None:
    reports = Reports()
    progress = Progress(reports)
    progress.cursor = Cursor(timestamp=1, progress=TurnProgress(open_tools=("run_flow", "search_docs")))
    with anyio.move_on_after(0.2):
        await progress.heartbeats(0.05)
    assert reports.messages and reports.messages[0] == "Still working (0 s): running run_flow, search_docs"


# -- graceful stop ---------------------------------------------------------------------------------


async def test_the_end_of_the_grace_period_cuts_following_short_after_a_whole_batch(
    stub: StubFlowHunt, caller: Caller
) -> None:
    runner = TurnRunner(stub_settings())
    stub.add("v3_tool_call_start", tool_name="run_flow")  # the turn would run on for ever
    handed: list[Cursor] = []

    async def take_then_stop(events: Sequence[RawEvent], cursor: Cursor) -> None:
        handed.append(cursor)
        runner.drain.expire()

    with anyio.fail_after(5):
        end = await runner.follow(
            caller, REF, Cursor(timestamp=0), deadline=time.monotonic() + 60, until="turn_end",
            on_events=take_then_stop,
        )  # fmt: skip
    assert handed == [end] and end.timestamp == int(stub.events[0]["created_at_timestamp"])


async def test_following_after_the_grace_period_returns_at_once_with_the_cursor_given(
    stub: StubFlowHunt, caller: Caller
) -> None:
    runner = TurnRunner(stub_settings())
    runner.drain.expire()
    start = Cursor(timestamp=42)

    async def keep(events: Sequence[RawEvent], cursor: Cursor) -> None:
        raise AssertionError("nothing is handed out after the grace period")

    deadline = time.monotonic() + 60
    with anyio.fail_after(5):
        end = await runner.follow(caller, REF, start, deadline=deadline, until="turn_end", on_events=keep)
    assert end == start and stub.requests == []


async def test_a_guard_is_cancelled_when_the_grace_period_ends() -> None:
    drain = Drain(grace_seconds=0)
    assert not drain.began.is_set()
    drain.begin()
    assert drain.began.is_set()
    with drain.guard() as scope:
        drain.expire()
        await anyio.sleep(5)
    assert scope.cancelled_caught and drain.expired
