"""follow.py: absorbing a batch, and the polling loop against FlowHunt in a MockTransport."""

from __future__ import annotations

import time
from collections.abc import Sequence

import anyio
import httpx2
import pytest

from flow_mcp.errors import ServerError, TransportError
from flow_mcp.flowhunt.client import FlowHuntClient
from flow_mcp.flowhunt.cursor import Cursor
from flow_mcp.flowhunt.follow import MAX_FAILED_POLLS, absorb, follow, replay
from flow_mcp.flowhunt.schedule import Pace
from flow_mcp.flowhunt.turn import TurnProgress, status_of
from flow_mcp.flowhunt.wire import RawEvent

from ..support.stub import SESSION, StubFlowHunt, now_ms, stub_settings

pytestmark = pytest.mark.anyio


def event(event_id: str, at: int, action: str = "agent_cot", role: str = "ai", **meta: object) -> RawEvent:
    return RawEvent(event_id=event_id, created_at_timestamp=at, action_type=action, event_type=role, metadata=meta)


# -- absorbing a batch -----------------------------------------------------------------------------


def test_absorb_hands_out_new_events_once_and_folds_them_into_the_progress() -> None:
    stamp = now_ms()
    batch = [event("b", stamp, "message", "ai", message="Done."), event("a", stamp - 1, "v3_tool_call_start")]
    fresh, cursor = absorb(SESSION, Cursor(timestamp=0), batch, settle_ms=60_000)
    assert [e.event_id for e in fresh] == ["a", "b"]
    assert cursor.timestamp == stamp and cursor.progress.answered and cursor.progress.open_tools
    again, same = absorb(SESSION, cursor, batch, settle_ms=60_000)
    assert again == [] and same.timestamp == cursor.timestamp


def test_absorb_latches_an_answer_whose_settle_window_has_passed() -> None:
    long_ago = now_ms() - 10_000
    _, cursor = absorb(SESSION, Cursor(timestamp=0), [event("a", long_ago, "message", "ai")], settle_ms=100)
    assert cursor.progress.outcome == "completed"


def test_absorb_with_a_limit_stops_the_cursor_after_the_last_event_handed_out() -> None:
    batch = [event(f"e{i}", 100 + i) for i in range(5)]
    fresh, cursor = absorb(SESSION, Cursor(timestamp=0), batch, settle_ms=100, limit=2)
    assert [e.event_id for e in fresh] == ["e0", "e1"] and cursor.timestamp == 101
    rest, _ = absorb(SESSION, cursor, batch, settle_ms=100)
    assert [e.event_id for e in rest] == ["e2", "e3", "e4"]


# -- the loop --------------------------------------------------------------------------------------


class Handed:
    """What follow hands to ``on_events``: every batch, with the cursor after it."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[str], Cursor]] = []

    async def __call__(self, events: Sequence[RawEvent], cursor: Cursor) -> None:
        self.batches.append(([e.event_id for e in events], cursor))

    @property
    def ids(self) -> list[str]:
        return [event_id for ids, _ in self.batches for event_id in ids]


async def reveal_later(stub: StubFlowHunt, delay: float, *actions: str) -> None:
    """Events that happen ``delay`` seconds from now, one per action; "message" is an answer."""
    await anyio.sleep(delay)
    for action in actions:
        if action == "message":
            stub.answer()
        else:
            stub.add(action, tool_name="run_flow")


async def test_follow_hands_out_every_event_once_in_order_and_returns_when_the_answer_settles() -> None:
    stub, handed = StubFlowHunt(), Handed()
    start = Cursor(timestamp=now_ms() - 1)
    stub.add("loading")
    async with FlowHuntClient(stub_settings(), transport=stub.transport) as client, anyio.create_task_group() as tg:
        tg.start_soon(reveal_later, stub, 0.05, "v3_tool_call_start")
        tg.start_soon(reveal_later, stub, 0.1, "v3_tool_call_end", "message")
        with anyio.fail_after(5):
            end = await follow(client, SESSION, start, on_events=handed)
    assert handed.ids == [e["event_id"] for e in stub.events]
    assert status_of(end.progress, now_ms(), 50) == "completed"
    assert [cursor.timestamp for _, cursor in handed.batches] == sorted(c.timestamp for _, c in handed.batches)
    assert handed.batches[-1][1].timestamp == end.timestamp


async def test_follow_until_new_events_returns_with_the_first_batch_of_a_running_turn() -> None:
    stub, handed = StubFlowHunt(), Handed()
    start = Cursor(timestamp=now_ms() - 1)
    async with FlowHuntClient(stub_settings(), transport=stub.transport) as client, anyio.create_task_group() as tg:
        tg.start_soon(reveal_later, stub, 0.05, "v3_tool_call_start")
        with anyio.fail_after(5):
            end = await follow(client, SESSION, start, until="new_events", on_events=handed)
    assert handed.ids == [stub.events[0]["event_id"]]
    assert status_of(end.progress, now_ms(), 50) == "running" and end.progress.open_tools == ("run_flow",)


async def test_follow_until_new_events_waits_out_the_settle_window_of_an_answer() -> None:
    stub, handed = StubFlowHunt(), Handed()
    start = Cursor(timestamp=now_ms() - 1)
    stub.answer()
    async with FlowHuntClient(stub_settings(settle_seconds=0.2), transport=stub.transport) as client:
        with anyio.fail_after(5):
            end = await follow(client, SESSION, start, until="new_events", on_events=handed)
    assert handed.ids == [stub.events[0]["event_id"]]
    assert status_of(end.progress, now_ms(), 200) == "completed"  # the answer and "completed" come together


async def test_follow_with_no_time_left_still_completes_its_one_poll() -> None:
    stub, handed = StubFlowHunt(), Handed()
    stub.add("loading")
    async with FlowHuntClient(stub_settings(), transport=stub.transport) as client:
        with anyio.fail_after(5):
            end = await follow(client, SESSION, Cursor(timestamp=0), deadline=0, on_events=handed)
    assert handed.ids == [stub.events[0]["event_id"]] and len(stub.paths("invocation_response")) == 1
    assert status_of(end.progress, now_ms(), 50) == "running"


async def test_follow_returns_the_cursor_so_far_at_its_deadline() -> None:
    stub, handed = StubFlowHunt(), Handed()
    stub.add("v3_tool_call_start", tool_name="run_flow")  # a tool that never ends
    async with FlowHuntClient(stub_settings(), transport=stub.transport) as client:
        with anyio.fail_after(5):
            end = await follow(client, SESSION, Cursor(timestamp=0), deadline=time.monotonic() + 0.5, on_events=handed)
    assert handed.ids == [stub.events[0]["event_id"]] and end.timestamp == int(stub.events[0]["created_at_timestamp"])
    assert len(stub.paths("invocation_response")) > 1


async def test_follow_stops_at_max_events_with_the_cursor_right_after_the_last_one() -> None:
    stub, handed = StubFlowHunt(), Handed()
    stamp = now_ms() - 100
    for i in range(5):
        stub.add("agent_cot", at=stamp + i)
    async with FlowHuntClient(stub_settings(), transport=stub.transport) as client:
        with anyio.fail_after(5):
            end = await follow(client, SESSION, Cursor(timestamp=0), max_events=3, on_events=handed)
    assert handed.ids == ["e0", "e1", "e2"] and end.timestamp == stamp + 2


async def test_follow_rides_out_failed_polls_and_loses_nothing() -> None:
    stub, handed = StubFlowHunt(), Handed()
    stub.add("loading")
    stub.answer()
    for outcome in (503, httpx2.ReadTimeout("stub timeout")):
        stub.fail("poll", outcome)
    async with FlowHuntClient(stub_settings(), transport=stub.transport) as client:
        with anyio.fail_after(5):
            end = await follow(client, SESSION, Cursor(timestamp=0), on_events=handed)
    assert handed.ids == ["e0", "e1"] and status_of(end.progress, now_ms(), 50) == "completed"
    assert len(stub.paths("invocation_response")) >= 3


@pytest.mark.parametrize(("outcome", "raised"), [(500, ServerError), (httpx2.ReadTimeout("stub"), TransportError)])
async def test_follow_gives_up_after_consecutive_failed_polls(outcome: int | Exception, raised: type) -> None:
    stub = StubFlowHunt()
    for _ in range(MAX_FAILED_POLLS):
        stub.fail("poll", outcome)
    async with FlowHuntClient(stub_settings(), transport=stub.transport) as client:
        with anyio.fail_after(5), pytest.raises(raised):
            await follow(client, SESSION, Cursor(timestamp=0))
    assert len(stub.paths("invocation_response")) == MAX_FAILED_POLLS


async def test_replay_returns_the_whole_session_oldest_first_each_once() -> None:
    stub = StubFlowHunt()
    stamp = now_ms() - 100
    for i in (3, 1, 2, 2):
        stub.add("agent_cot", at=stamp + i)
    async with FlowHuntClient(stub_settings(), transport=stub.transport) as client:
        events, cursor = await replay(client, SESSION)
    assert [e.event_id for e in events] == ["e1", "e2", "e3", "e0"] and cursor.timestamp == stamp + 3
    assert stub.paths("invocation_response")[0].endswith("/0")


# -- the schedule across calls ---------------------------------------------------------------------------------


def waiting_on_a_long_tool(client: FlowHuntClient) -> Cursor:
    """A cursor whose turn runs a tool the client learned takes a minute, started and polled just now."""
    for _ in range(10):
        client.timings.tools.learn("run_flow", 60.0)
    for _ in range(30):
        client.timings.gaps.count_follow("v3_tool_call_start", followed=False)
    stamp = now_ms()
    pace = Pace(polled_ms=stamp, last_kind="v3_tool_call_start", last_at_ms=stamp, open=(("run_flow", stamp),))
    return Cursor(timestamp=stamp - 10, progress=TurnProgress(open_tools=("run_flow",)), pace=pace)


async def test_follow_goes_on_with_the_schedule_its_cursor_carries() -> None:
    stub = StubFlowHunt()
    settings = stub_settings(poll_thinking_max_interval=5.0, poll_max_interval=30.0)
    async with FlowHuntClient(settings, transport=stub.transport) as client:
        cursor = waiting_on_a_long_tool(client)
        with anyio.fail_after(5):
            await follow(client, SESSION, cursor, until="new_events", deadline=time.monotonic() + 0.3)
    assert len(stub.paths("invocation_response")) == 1  # nothing due for a minute: one poll, when the time was up


async def test_follow_with_no_time_left_polls_at_once_whatever_the_schedule_says() -> None:
    stub = StubFlowHunt()
    async with FlowHuntClient(stub_settings(poll_max_interval=30.0), transport=stub.transport) as client:
        cursor = waiting_on_a_long_tool(client)
        stub.add("loading", at=cursor.timestamp + 5)
        with anyio.fail_after(5):
            started = time.monotonic()
            end = await follow(client, SESSION, cursor.with_progress(TurnProgress()), deadline=0)
    assert len(stub.paths("invocation_response")) == 1 and end.timestamp > cursor.timestamp
    assert time.monotonic() - started < 5  # bounded by fail_after as well; it did not wait for the schedule
