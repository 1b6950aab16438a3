"""FlowHuntClient against a real sandbox over loopback HTTP, with the sandbox's fault knobs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from pydantic import SecretStr

from flow_mcp import follow
from flow_mcp.config import Settings
from flow_mcp.errors import (
    AuthError,
    ConfigurationError,
    FlowHuntError,
    InvalidArgumentError,
    NotFoundError,
    RateLimitError,
    ResponseShapeError,
    ServerError,
    TransportError,
    ValidationError,
)
from flow_mcp.flowhunt.client import FlowHuntClient, SessionKind, validate_session_id
from flow_mcp.flowhunt.cursor import Cursor, decode_cursor
from flow_mcp.flowhunt.follow import now_ms
from flow_mcp.flowhunt.requester import Seen
from flow_mcp.flowhunt.turn import status_of
from flow_mcp.flowhunt.wire import RawEvent
from flow_mcp.sandbox import SandboxServer

from ..support.servers import settings_for

pytestmark = pytest.mark.anyio

WORKSPACE = "ws-sandbox"


def requests_to(sandbox: SandboxServer, fragment: str, method: str | None = None) -> list[dict[str, Any]]:
    return [
        entry
        for entry in sandbox.state.request_log()
        if fragment in str(entry["path"]) and (method is None or entry["method"] == method)
    ]


def scheduled_events(sandbox: SandboxServer, session_id: str) -> list[dict[str, Any]]:
    session = sandbox.state.get_session(session_id)
    assert session is not None
    return sandbox.state.session_events(session)


def invocations(sandbox: SandboxServer, session_id: str) -> list[dict[str, Any]]:
    session = sandbox.state.get_session(session_id)
    assert session is not None
    return sandbox.state.session_invocations(session)


class Recorder(FlowHuntClient):
    """The real client, noting every failed poll that got past its own retries: what a follower gets to see."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.poll_errors: list[FlowHuntError] = []

    async def poll(
        self,
        session_id: str,
        from_timestamp: str,
        *,
        kind: SessionKind = "assistant",
        deadline: float | None = None,
        seen: Seen | None = None,
    ) -> list[RawEvent]:
        try:
            return await super().poll(session_id, from_timestamp, kind=kind, deadline=deadline, seen=seen)
        except FlowHuntError as error:
            self.poll_errors.append(error)
            raise


@dataclass
class Followed:
    delivered: list[RawEvent]
    status: str
    cursor: Cursor


async def follow_turn(client: FlowHuntClient, session_id: str, cursor: Cursor, deadline_s: float = 20) -> Followed:
    """Follow the turn to its end with flow_mcp.follow, keeping every event it hands out."""
    delivered: list[RawEvent] = []

    async def keep(events: Sequence[RawEvent], _: Cursor) -> None:
        delivered.extend(events)

    with anyio.fail_after(deadline_s):
        end = await follow(client, session_id, cursor, on_events=keep)
    return Followed(delivered, status_of(end.progress, now_ms(), client.settings.settle_ms), end)


def assert_delivered_exactly_once(sandbox: SandboxServer, session_id: str, delivered: list[RawEvent]) -> None:
    ids = [event.event_id for event in delivered]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    visible = [event for event in scheduled_events(sandbox, session_id) if event["visible"]]
    assert set(ids) == {event["event_id"] for event in visible}, "an event was lost"
    stamps = [event.created_at_timestamp for event in delivered]
    assert stamps == sorted(stamps)
    by_id = {event["event_id"]: event for event in visible}
    for event in delivered:
        assert event.action_type == by_id[event.event_id]["action_type"]
        assert event.created_at_timestamp == int(by_id[event.event_id]["created_at_timestamp"])


# ---------------------------------------------------------------------------------------------
# Sessions, workspace and auth


async def test_create_session_returns_a_session_the_sandbox_knows(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox)) as client:
        created = await client.create_session(context_flow_id="flow-1")
    session = sandbox.state.get_session(created.session_id)
    assert session is not None and session.context_flow_id == "flow-1"
    assert created.created_at
    [create] = requests_to(sandbox, "/create", "POST")
    assert create["status"] == 201 and f"workspace_id={WORKSPACE}" in str(create["query"])


async def test_the_workspace_is_discovered_from_the_key_once(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox, workspace_id=None)) as client:
        assert await client.workspace_id() == WORKSPACE
        async with anyio.create_task_group() as tasks:
            for _ in range(5):
                tasks.start_soon(client.create_session)
        await client.create_session()
    assert len(requests_to(sandbox, "/v2/auth/me")) == 1
    assert len(requests_to(sandbox, "/create", "POST")) == 6
    assert len(sandbox.state.sessions) == 6


async def test_concurrent_first_calls_discover_the_workspace_once(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox, workspace_id=None)) as client, anyio.create_task_group() as tasks:
        for _ in range(5):
            tasks.start_soon(client.create_session)
    assert len(requests_to(sandbox, "/v2/auth/me")) == 1


async def test_a_configured_workspace_is_used_as_is(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox, workspace_id=WORKSPACE)) as client:
        await client.create_session()
    assert requests_to(sandbox, "/v2/auth/me") == []
    [create] = requests_to(sandbox, "/create", "POST")
    assert create["query"] == f"workspace_id={WORKSPACE}"


async def test_a_foreign_workspace_is_refused_with_auth_error(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox, workspace_id="ws-someone-else")) as client:
        with pytest.raises(AuthError) as raised:
            await client.create_session()
    assert raised.value.status_code == 403


@pytest.mark.parametrize("style", ["bearer", "api-key"])
async def test_both_auth_header_styles_are_accepted(sandbox: SandboxServer, style: str) -> None:
    async with FlowHuntClient(settings_for(sandbox, auth_header=style)) as client:
        me = await client.me()
        created = await client.create_session()
    assert me["api_key_workspace_id"] == WORKSPACE
    assert sandbox.state.get_session(created.session_id) is not None


@pytest.mark.parametrize("workspace", [None, WORKSPACE])
@pytest.mark.parametrize("style", ["bearer", "api-key"])
async def test_a_wrong_key_raises_auth_error_without_the_key(
    sandbox: SandboxServer, style: str, workspace: str | None
) -> None:
    key = "fh-wrong-key-0123456789"
    settings = settings_for(sandbox, api_key=SecretStr(key), auth_header=style, workspace_id=workspace)
    async with FlowHuntClient(settings) as client:
        with pytest.raises(AuthError) as raised:
            await client.create_session()
    assert raised.value.status_code == 401
    for text in (str(raised.value), repr(raised.value), raised.value.detail, *map(str, raised.value.args)):
        assert key not in text
    assert sandbox.state.sessions == {}


@pytest.mark.parametrize("workspace", [None, WORKSPACE])
async def test_a_missing_key_raises_configuration_error_before_any_request(
    sandbox: SandboxServer, workspace: str | None
) -> None:
    async with FlowHuntClient(settings_for(sandbox, api_key=None, workspace_id=workspace)) as client:
        with pytest.raises(ConfigurationError):
            await client.create_session()
    assert sandbox.state.request_log() == []


@pytest.mark.parametrize("used", [False, True])
async def test_a_closed_client_refuses_requests_even_if_closed_before_its_first(
    sandbox: SandboxServer, used: bool
) -> None:
    # Its HTTP pool is made by the first request: closing it before one must not leave a pool to be made later.
    client = FlowHuntClient(settings_for(sandbox))
    if used:
        await client.create_session()
    await client.aclose()
    with pytest.raises(RuntimeError):
        await client.create_session()
    assert len(requests_to(sandbox, "/create", "POST")) == int(used)


async def test_invoke_and_poll_need_no_key(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox)) as keyed:
        session_id = (await keyed.create_session()).session_id
    async with FlowHuntClient(settings_for(sandbox, api_key=None)) as client:
        invocation = await client.invoke(session_id, "hello")
        followed = await follow_turn(client, session_id, decode_cursor(invocation.created_at))
    assert followed.status == "completed"


async def test_an_unknown_session_raises_not_found(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox)) as client:
        with pytest.raises(NotFoundError) as on_poll:
            await client.poll("no-such-session", "0")
        with pytest.raises(NotFoundError) as on_invoke:
            await client.invoke("no-such-session", "hello")
    assert on_poll.value.status_code == on_invoke.value.status_code == 404


async def test_a_rejected_ai_model_raises_validation_error_and_starts_nothing(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox)) as client:
        session_id = (await client.create_session()).session_id
        with pytest.raises(ValidationError) as raised:
            await client.invoke(session_id, "hello", ai_model="GPT-2")
        invocation = await client.invoke(session_id, "hello", ai_model="O4 Mini")
    assert raised.value.status_code == 422 and "ai_model" in raised.value.detail
    [accepted] = invocations(sandbox, session_id)
    assert accepted["ai_model"] == "O4 Mini" and accepted["message_id"] == invocation.message_id


# ---------------------------------------------------------------------------------------------
# Following a turn under every fault


async def test_a_turn_is_followed_to_its_answer(sandbox: SandboxServer) -> None:
    async with Recorder(settings_for(sandbox)) as client:
        session_id = (await client.create_session()).session_id
        invocation = await client.invoke(session_id, "Build a support bot")
        followed = await follow_turn(client, session_id, decode_cursor(invocation.created_at))
    assert followed.status == "completed"
    assert client.poll_errors == []
    assert_delivered_exactly_once(sandbox, session_id, followed.delivered)
    answers = [e for e in followed.delivered if e.action_type == "message" and e.event_type == "ai"]
    assert "Build a support bot" in answers[-1].meta["message"]
    assert followed.delivered[0].event_type == "human"


async def test_the_welcome_message_is_replayed_from_cursor_zero(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox)) as client:
        session_id = (await client.create_session(start_with_welcome_message=True)).session_id
        followed = await follow_turn(client, session_id, decode_cursor("0"))
    assert followed.status == "completed"
    assert [(e.event_type, e.action_type) for e in followed.delivered] == [("ai", "message")]


KNOBS: dict[str, dict[str, object]] = {
    "exclusive cursor": {"inclusive_cursor": False},
    "inclusive cursor": {"inclusive_cursor": True},
    "shuffle": {"shuffle": True},
    "duplicates": {"duplicate_rate": 0.8},
    "duplicates inclusive shuffled": {"duplicate_rate": 0.8, "inclusive_cursor": True, "shuffle": True},
    "429 bursts": {"rate_429": 0.4, "retry_after_s": 0.05},
    "500 bursts": {"rate_500": 0.3},
    "503 bursts": {"rate_503": 0.25},
    "connection resets": {"rate_reset": 0.25},
    "truncated bodies": {"rate_truncated": 0.25},
    "wrong shapes": {"rate_wrong_shape": 0.25},
    "all together": {
        "inclusive_cursor": True,
        "shuffle": True,
        "duplicate_rate": 0.5,
        "rate_429": 0.1,
        "retry_after_s": 0.05,
        "rate_500": 0.1,
        "rate_503": 0.1,
        "rate_reset": 0.1,
        "rate_truncated": 0.1,
        "rate_wrong_shape": 0.1,
    },
}
INJECTED = {
    "rate_429": "429",
    "rate_500": "500",
    "rate_503": "503",
    "rate_reset": "reset",
    "rate_truncated": "truncated",
    "rate_wrong_shape": "wrong_shape",
}


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("knobs", list(KNOBS.values()), ids=list(KNOBS))
async def test_every_visible_event_is_delivered_exactly_once_under_faults(
    sandbox: SandboxServer, knobs: dict[str, object], seed: int
) -> None:
    # Poll every 10 ms, and spread a long turn over about 0.7 s with events sharing milliseconds: dozens of polls
    # split it (follow polls once per settle window, so the turn itself must be long enough to draw faults).
    often = {
        "poll_min_interval": 0.01,
        "poll_thinking_max_interval": 0.01,
        "poll_max_interval": 0.01,
        "poll_rate": 100.0,
    }
    async with Recorder(settings_for(sandbox, max_retries=10, retry_max_seconds=30, **often)) as client:
        session_id = (await client.create_session()).session_id
        sandbox.state.update_config({"pacing": 0.6})
        invocation = await client.invoke(session_id, "events:150 please")
        sandbox.state.update_config({**knobs, "seed": seed})
        followed = await follow_turn(client, session_id, decode_cursor(invocation.created_at), deadline_s=40)
    assert followed.status == "completed"
    assert len(followed.delivered) > 150
    assert_delivered_exactly_once(sandbox, session_id, followed.delivered)
    assert len({e.created_at_timestamp for e in followed.delivered}) < len(followed.delivered)  # ms were shared
    polls = requests_to(sandbox, "/invocation_response/")
    assert len(polls) > 3
    faults = sandbox.state.fault_counts()
    wanted = {kind for knob, kind in INJECTED.items() if knob in knobs}
    if len(wanted) == 1:
        assert wanted <= faults.keys(), "no fault was injected: the test proved nothing"
    elif wanted:
        assert len(wanted & faults.keys()) >= 2
    if "rate_500" not in knobs:
        # Everything else is retried inside the client: the caller never sees it (a 500 is not retried).
        assert client.poll_errors == []


async def test_a_wrong_shape_poll_body_is_retried_inside_the_client(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox, max_retries=10)) as client:
        session_id = (await client.create_session()).session_id
        await client.invoke(session_id, "hello")
        sandbox.state.update_config({"rate_wrong_shape": 0.3, "seed": 1})
        with anyio.fail_after(20):
            for _ in range(15):
                await client.poll(session_id, "0")
    assert sandbox.state.fault_counts()["wrong_shape"] >= 2


async def test_a_truncated_poll_body_is_retried_inside_the_client(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox, max_retries=10)) as client:
        session_id = (await client.create_session()).session_id
        await client.invoke(session_id, "hello")
        sandbox.state.update_config({"rate_truncated": 0.3, "seed": 1})
        with anyio.fail_after(20):
            for _ in range(15):
                await client.poll(session_id, "0")
    assert sandbox.state.fault_counts()["truncated"] >= 2


async def test_a_second_turn_is_followed_from_its_own_invoke(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox)) as client:
        session_id = (await client.create_session()).session_id
        first = await client.invoke(session_id, "hello")
        one = await follow_turn(client, session_id, decode_cursor(first.created_at))
        sandbox.state.update_config({"inclusive_cursor": True, "duplicate_rate": 1.0, "shuffle": True})
        second = await client.invoke(session_id, "multi step please")
        two = await follow_turn(client, session_id, one.cursor)
    assert one.status == two.status == "completed"
    assert int(second.created_at) >= one.delivered[-1].created_at_timestamp
    assert_delivered_exactly_once(sandbox, session_id, one.delivered + two.delivered)
    assert two.delivered[0].event_type == "human" and two.delivered[0].meta["message"] == "multi step please"


async def test_unknown_action_types_pass_through_untouched(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox)) as client:
        session_id = (await client.create_session()).session_id
        invocation = await client.invoke(session_id, "show me something unknown")
        followed = await follow_turn(client, session_id, decode_cursor(invocation.created_at))
    assert followed.status == "completed"
    assert_delivered_exactly_once(sandbox, session_id, followed.delivered)
    by_type = {event.action_type: event for event in followed.delivered}
    leap = by_type["quantum_leap"]
    assert leap.event_type == "flow_assistant_action" and leap.meta["distance"] == 42
    assert by_type["artefacts"].metadata == [{"id": "a1", "name": "notes.txt"}, "loose item", 7]
    assert by_type["todo_list"].metadata == "todo metadata as a bare string"
    assert by_type["agent_cot"].event_type == "observer"
    assert by_type["quantum_leap"].model_extra == {"workspace_id": WORKSPACE}


@pytest.mark.parametrize(
    ("message", "status"),
    [("please fail", "failed"), ("hook me", "waiting_for_input"), ("close session now", "session_closed")],
)
async def test_turns_that_do_not_complete_are_recognised(sandbox: SandboxServer, message: str, status: str) -> None:
    async with FlowHuntClient(settings_for(sandbox)) as client:
        session_id = (await client.create_session()).session_id
        invocation = await client.invoke(session_id, message)
        followed = await follow_turn(client, session_id, decode_cursor(invocation.created_at))
    assert followed.status == status


# ---------------------------------------------------------------------------------------------
# Retries: never a second invoke, always bounded


async def test_an_invoke_answered_500_is_not_sent_again(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox, max_retries=3)) as client:
        session_id = (await client.create_session()).session_id
        sandbox.state.update_config({"rate_500": 1.0})
        with pytest.raises(ServerError) as raised:
            await client.invoke(session_id, "hello")
    assert raised.value.status_code == 500
    assert len(requests_to(sandbox, "/invoke", "POST")) == 1
    assert len(invocations(sandbox, session_id)) == 1  # FlowHunt took it in: sending it again would double it


@pytest.mark.parametrize("fault", ["rate_reset", "rate_truncated", "rate_wrong_shape"])
async def test_an_invoke_broken_after_processing_is_not_sent_again(sandbox: SandboxServer, fault: str) -> None:
    async with FlowHuntClient(settings_for(sandbox, max_retries=3)) as client:
        session_id = (await client.create_session()).session_id
        sandbox.state.update_config({fault: 1.0})
        with pytest.raises((TransportError, ResponseShapeError)):
            await client.invoke(session_id, "hello")
    assert len(requests_to(sandbox, "/invoke", "POST")) == 1
    assert len(invocations(sandbox, session_id)) == 1


async def test_an_invoke_answered_503_is_retried_and_never_processed(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox, max_retries=2)) as client:
        session_id = (await client.create_session()).session_id
        sandbox.state.update_config({"rate_503": 1.0})
        with anyio.fail_after(10), pytest.raises(ServerError) as raised:
            await client.invoke(session_id, "hello")
    assert raised.value.status_code == 503
    assert [entry["status"] for entry in requests_to(sandbox, "/invoke", "POST")] == [503, 503, 503]
    assert invocations(sandbox, session_id) == []


async def test_an_invoke_answered_429_is_retried_and_raises_rate_limit(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox, max_retries=2)) as client:
        session_id = (await client.create_session()).session_id
        sandbox.state.update_config({"rate_429": 1.0, "retry_after_s": 0.05})
        with anyio.fail_after(10), pytest.raises(RateLimitError) as raised:
            await client.invoke(session_id, "hello")
    assert raised.value.status_code == 429 and raised.value.retry_after is not None
    assert 0 <= raised.value.retry_after <= 1
    assert len(requests_to(sandbox, "/invoke", "POST")) == 3
    assert invocations(sandbox, session_id) == []


async def test_an_invoke_succeeds_through_a_429_and_503_burst(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox, max_retries=10)) as client:
        session_id = (await client.create_session()).session_id
        sandbox.state.update_config({"rate_429": 0.4, "rate_503": 0.4, "retry_after_s": 0.05, "seed": 3})
        for n in range(5):
            await client.invoke(session_id, f"hello {n}")
    assert [i["message"] for i in invocations(sandbox, session_id)] == [f"hello {n}" for n in range(5)]
    assert len(requests_to(sandbox, "/invoke", "POST")) > 5


@pytest.mark.parametrize("max_retries", [0, 1, 3])
async def test_poll_retries_are_bounded_in_count(sandbox: SandboxServer, max_retries: int) -> None:
    async with FlowHuntClient(settings_for(sandbox, max_retries=max_retries)) as client:
        session_id = (await client.create_session()).session_id
        sandbox.state.update_config({"rate_503": 1.0})
        with anyio.fail_after(10), pytest.raises(ServerError) as raised:
            await client.poll(session_id, "0")
    assert raised.value.status_code == 503
    assert len(requests_to(sandbox, "/invocation_response/")) == max_retries + 1


async def test_retries_stop_when_the_wait_would_exceed_the_retry_budget(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox, max_retries=5, retry_max_seconds=1.0)) as client:
        session_id = (await client.create_session()).session_id
        sandbox.state.update_config({"rate_429": 1.0, "retry_after_s": 30})
        started = time.monotonic()
        with anyio.fail_after(10), pytest.raises(RateLimitError) as raised:
            await client.poll(session_id, "0")
    assert time.monotonic() - started < 2
    assert raised.value.retry_after is not None and raised.value.retry_after > 1
    assert len(requests_to(sandbox, "/invocation_response/")) == 1


async def test_retry_after_in_either_form_is_honoured(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox, max_retries=10)) as client:
        session_id = (await client.create_session()).session_id
        sandbox.state.update_config({"rate_429": 0.5, "retry_after_s": 0.05, "seed": 5})
        with anyio.fail_after(20):
            for _ in range(20):
                await client.poll(session_id, "0")
    assert sandbox.state.fault_counts()["429"] >= 5


async def test_a_stalled_poll_times_out_with_a_transport_error(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox, timeout=0.3, max_retries=1)) as client:
        session_id = (await client.create_session()).session_id
        sandbox.state.update_config({"rate_stall": 1.0, "stall_s": 5})
        started = time.monotonic()
        with anyio.fail_after(10), pytest.raises(TransportError) as raised:
            await client.poll(session_id, "0")
    assert time.monotonic() - started < 3
    assert raised.value.request_sent
    assert len(requests_to(sandbox, "/invocation_response/")) == 2


async def test_a_stalled_invoke_times_out_and_is_not_sent_again(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox, timeout=0.3, max_retries=3)) as client:
        session_id = (await client.create_session()).session_id
        sandbox.state.update_config({"rate_stall": 1.0, "stall_s": 5})
        with anyio.fail_after(10), pytest.raises(TransportError) as raised:
            await client.invoke(session_id, "hello")
    assert raised.value.request_sent
    assert len(requests_to(sandbox, "/invoke", "POST")) == 1


async def test_an_unreachable_server_raises_transport_error_not_sent(fresh_sandbox: SandboxServer) -> None:
    url = fresh_sandbox.url
    fresh_sandbox.stop()
    async with FlowHuntClient(settings_for_url(url)) as client:
        with anyio.fail_after(10), pytest.raises(TransportError) as raised:
            await client.invoke("some-session", "hello")
    assert not raised.value.request_sent


def settings_for_url(url: str) -> Settings:
    return Settings(base_url=url, api_key=SecretStr("k"), timeout=2.0, max_retries=1, retry_max_seconds=2.0)


# ---------------------------------------------------------------------------------------------
# Path safety and parsing

BAD_SESSION_IDS = ["../x", "a/b", "a%2Fb", "a?b", "a#b", "", "x" * 129, "a\x00b", "ä", " a", "a b", "..", "a\\b"]


@pytest.mark.parametrize("session_id", BAD_SESSION_IDS)
async def test_malformed_session_ids_are_refused_before_any_request(sandbox: SandboxServer, session_id: str) -> None:
    async with FlowHuntClient(settings_for(sandbox)) as client:
        with pytest.raises(InvalidArgumentError):
            await client.invoke(session_id, "hello")
        with pytest.raises(InvalidArgumentError):
            await client.poll(session_id, "0")
    with pytest.raises(InvalidArgumentError):
        validate_session_id(session_id)
    assert sandbox.state.request_log() == []


@pytest.mark.parametrize("stamp", ["12a", "", "-1", "1.5", " 12", "9" * 21, "../0", "0/x"])
async def test_malformed_timestamps_are_refused_before_any_request(sandbox: SandboxServer, stamp: str) -> None:
    async with FlowHuntClient(settings_for(sandbox)) as client:
        with pytest.raises(InvalidArgumentError):
            await client.poll("a-well-formed-id", stamp)
    assert sandbox.state.request_log() == []


async def test_a_session_id_with_a_trailing_newline_is_refused(sandbox: SandboxServer) -> None:
    async with FlowHuntClient(settings_for(sandbox)) as client:
        with pytest.raises(InvalidArgumentError):
            await client.poll("abc\n", "0")


@pytest.mark.parametrize("stamp", ["123\n", "١٢٣"])
async def test_timestamps_with_a_newline_or_non_ascii_digits_are_refused(sandbox: SandboxServer, stamp: str) -> None:
    async with FlowHuntClient(settings_for(sandbox)) as client:
        session_id = (await client.create_session()).session_id
        with pytest.raises(InvalidArgumentError):
            await client.poll(session_id, stamp)
