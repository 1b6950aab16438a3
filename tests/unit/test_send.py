"""send.py: a message is sent exactly once; when FlowHunt's answer leaves its fate unclear, the session tells."""

from __future__ import annotations

import anyio
import httpx2
import pytest

from flow_mcp.errors import NotDeliveredError, ServerError, TransportError, ValidationError
from flow_mcp.flowhunt.client import FlowHuntClient
from flow_mcp.flowhunt.send import send_message

from ..support.stub import SESSION, StubFlowHunt, now_ms, stub_settings

pytestmark = pytest.mark.anyio

MESSAGE = "Build a support bot"


def invokes(stub: StubFlowHunt) -> int:
    return len(stub.paths("/invoke"))


def human_messages(stub: StubFlowHunt) -> list[str]:
    return [e["metadata"]["message"] for e in stub.events if e["event_type"] == "human"]


async def test_an_accepted_message_is_followed_from_its_own_timestamp_with_its_cached_events() -> None:
    stub = StubFlowHunt()
    ahead = str(now_ms() + 60_000)  # after the invoke's own timestamp, however slow the machine
    stub.cached_events = [
        {"event_id": "c1", "created_at_timestamp": ahead, "action_type": "loading", "event_type": "ai"},
        {"not": "an event"},
    ]
    async with FlowHuntClient(stub_settings(), transport=stub.transport) as client:
        with anyio.fail_after(5):
            sent = await send_message(client, SESSION, MESSAGE)
    (human,) = stub.events
    assert sent.message_id == human["metadata"]["message_id"] and sent.created_at == human["created_at_timestamp"]
    assert not sent.recovered and [e.event_id for e in sent.events] == ["c1"]
    assert sent.cursor.timestamp == int(stub.cached_events[0]["created_at_timestamp"])


@pytest.mark.parametrize(
    "outcome", [500, 502, httpx2.ReadTimeout("stub timeout"), httpx2.RemoteProtocolError("stub reset")]
)
async def test_a_failure_after_flowhunt_took_the_message_in_is_recovered_from_the_session_not_resent(
    outcome: int | Exception,
) -> None:
    stub = StubFlowHunt()
    stub.fail("invoke", outcome, taken=True)
    async with FlowHuntClient(stub_settings(), transport=stub.transport) as client:
        with anyio.fail_after(10):
            sent = await send_message(client, SESSION, MESSAGE)
    (human,) = stub.events
    assert sent.recovered and sent.events == []
    assert sent.message_id == human["metadata"]["message_id"]
    assert sent.cursor.timestamp == int(human["created_at_timestamp"])  # the turn is followed from its message on
    assert invokes(stub) == 1 and human_messages(stub) == [MESSAGE]


async def test_a_500_without_the_message_in_the_session_says_sending_again_is_safe() -> None:
    stub = StubFlowHunt()
    stub.fail("invoke", 500)
    async with FlowHuntClient(stub_settings(), transport=stub.transport) as client:
        with anyio.fail_after(10), pytest.raises(NotDeliveredError) as raised:
            await send_message(client, SESSION, MESSAGE)
    assert isinstance(raised.value.__cause__, ServerError)
    assert invokes(stub) == 1 and len(stub.paths("invocation_response")) > 1  # looked again before giving up


async def test_a_timeout_without_the_message_in_the_session_proves_nothing_and_is_raised_as_it_is() -> None:
    stub = StubFlowHunt()
    stub.fail("invoke", httpx2.ReadTimeout("stub timeout"))
    async with FlowHuntClient(stub_settings(), transport=stub.transport) as client:
        with anyio.fail_after(10), pytest.raises(TransportError) as raised:
            await send_message(client, SESSION, MESSAGE)
    assert raised.value.request_sent and invokes(stub) == 1


@pytest.mark.parametrize(("status", "error"), [(503, ServerError), (422, ValidationError)])
async def test_a_refusal_before_flowhunt_took_the_message_is_raised_at_once_without_a_search(
    status: int, error: type
) -> None:
    stub = StubFlowHunt()
    stub.fail("invoke", status)
    async with FlowHuntClient(stub_settings(), transport=stub.transport) as client:
        with anyio.fail_after(5), pytest.raises(error):
            await send_message(client, SESSION, MESSAGE)
    assert invokes(stub) == 1 and stub.paths("invocation_response") == []


async def test_only_a_recent_copy_of_the_message_counts_in_an_older_session() -> None:
    stub = StubFlowHunt()
    stub.add("message", "human", at=now_ms() - 3_600_000, message_id="old", message=MESSAGE)  # an hour ago
    stub.fail("invoke", 500)
    async with FlowHuntClient(stub_settings(), transport=stub.transport) as client:
        with anyio.fail_after(10), pytest.raises(NotDeliveredError):
            await send_message(client, SESSION, MESSAGE)


async def test_in_a_new_session_any_copy_of_the_message_is_this_one() -> None:
    stub = StubFlowHunt()
    old = stub.add("message", "human", at=now_ms() - 3_600_000, message_id="m-early", message=MESSAGE)
    stub.fail("invoke", 500)
    async with FlowHuntClient(stub_settings(), transport=stub.transport) as client:
        with anyio.fail_after(5):
            sent = await send_message(client, SESSION, MESSAGE, new_session=True)
    assert sent.recovered and sent.message_id == "m-early" and sent.created_at == old["created_at_timestamp"]
