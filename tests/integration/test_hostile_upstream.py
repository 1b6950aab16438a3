"""A hostile FlowHunt: poison strings, endless, bombed and dripping bodies, hour-long Retry-After, echoed keys.

Each test pins a finding of an outside review. The scripted upstream (tests/support/upstream.py) plays FlowHunt; the
sandbox plays it where a whole turn matters.
Here the in-process tests; those with real processes: tests/e2e/test_hostile_upstream.py.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote, quote_plus

import anyio
import httpx2
import pydantic
import pytest
from mcp import Client
from pydantic import SecretStr

from flow_mcp import errors
from flow_mcp.cli.logs import SecretRedactor
from flow_mcp.config import Settings
from flow_mcp.errors import ConfigurationError, RateLimitError, TransportError
from flow_mcp.flowhunt import ratelimit
from flow_mcp.flowhunt.client import FlowHuntClient
from flow_mcp.flowhunt.cursor import decode_cursor
from flow_mcp.sandbox import SandboxServer
from flow_mcp.server import arguments
from flow_mcp.server.app import build_server
from flow_mcp.server.results import describe

from ..support.fuzzing import assert_handled
from ..support.servers import SECRET_KEY, settings_for, text_of
from ..support.upstream import Scripted, Upstream
from .test_client import assert_delivered_exactly_once, follow_turn
from .test_fuzz import upstream_settings

pytestmark = pytest.mark.anyio

# Lone surrogates as FlowHunt would send them: JSON escapes, in ids, timestamps, texts, keys and extra fields.
SURROGATES = {
    "create": Scripted(200, rb'{"session_id": "sess-1", "created_at": "\ud800"}'),
    "invoke": Scripted(200, rb'{"message_id": "m-\udbff", "created_at": "1000", "cached_events": []}'),
    "poll": Scripted(
        200,
        rb'[{"event_id": "e-\udc00", "created_at_timestamp": 2000, "event_type": "ai", "action_type": "message",'
        rb' "workspace_id": "ws-\ud800", "metadata": {"message": "hi \ud800 there", "k\udfff": ["\udfff"]}}]',
    ),
}
ANSWER = "hi \ufffd there"


def assert_utf8(value: Any) -> None:
    """Every string in ``value`` can be written as UTF-8 (what a stdio or HTTP transport must do)."""
    json.dumps(value, ensure_ascii=False).encode("utf-8")


@asynccontextmanager
async def memory_client(settings: Settings) -> AsyncIterator[Client]:
    async with Client(build_server(settings)) as client:
        yield client


# -- 1. lone surrogates --------------------------------------------------------------------------------------


async def test_the_client_replaces_lone_surrogates_in_every_upstream_string() -> None:
    with Upstream() as upstream:
        upstream.script(**SURROGATES)
        async with FlowHuntClient(upstream_settings(upstream, workspace_id="ws-1")) as client:
            created = await client.create_session()
            invoked = await client.invoke("sess-1", "hello")
            events = await client.poll("sess-1", "0")
    assert created.created_at == "\ufffd" and invoked.message_id == "m-\ufffd"
    assert [event.event_id for event in events] == ["e-\ufffd"]
    assert events[0].meta == {"message": ANSWER, "k\ufffd": ["\ufffd"]}
    assert_utf8([event.model_dump() for event in events])


async def test_lone_surrogates_from_flowhunt_reach_tool_results_as_replacement_characters() -> None:
    with Upstream() as upstream:
        upstream.script(**SURROGATES)
        async with memory_client(upstream_settings(upstream, workspace_id="ws-1", ask_timeout=5)) as client:
            asked = await client.call_tool("ask", {"message": "hello"})
            replayed = await client.call_tool("poll_events", {"session_id": "sess-1", "cursor": "0"})
            upstream.script(poll=Scripted(500, rb'{"detail": "broken \ud800 here"}'))
            failed = await client.call_tool("poll_events", {"session_id": "sess-1", "cursor": "0"})
    assert not asked.is_error and (asked.structured_content or {})["answer"] == ANSWER
    assert not replayed.is_error and (replayed.structured_content or {})["events"][0]["text"] == ANSWER
    assert failed.is_error and "broken \ufffd here" in text_of(failed)
    for result in (asked, replayed, failed):
        assert_utf8(result.model_dump())


# -- 3. response size ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip-bomb"])
async def test_a_body_past_the_size_limit_fails_the_call_with_a_response_too_large_error(gzip: bool) -> None:
    with Upstream() as upstream:
        upstream.script(poll=Scripted(200, b"[]", pad=8_000_000, gzip=gzip))  # valid JSON, however long
        async with FlowHuntClient(upstream_settings(upstream, max_response_bytes=1_000_000)) as client:
            with anyio.fail_after(20), pytest.raises(errors.ResponseTooLargeError) as raised:
                await client.poll("sess-1", "0")
    assert "FLOW_MCP_MAX_RESPONSE_BYTES" in str(raised.value)


async def test_an_endless_body_is_cut_off_at_the_size_limit() -> None:
    with Upstream() as upstream:
        upstream.script(poll=Scripted(200, b"[", pad=1 << 40))
        async with FlowHuntClient(upstream_settings(upstream, max_response_bytes=2_000_000)) as client:
            with anyio.fail_after(20), pytest.raises(errors.ResponseTooLargeError):
                await client.poll("sess-1", "0")


async def test_a_too_large_answer_is_not_fetched_again() -> None:
    with Upstream() as upstream:
        upstream.script(poll=Scripted(200, b"[]", pad=3_000_000))
        limits = upstream_settings(upstream, max_response_bytes=1_000_000, max_retries=4, retry_max_seconds=10)
        async with FlowHuntClient(limits) as client:
            with anyio.fail_after(20), pytest.raises(errors.ResponseTooLargeError):
                await client.poll("sess-1", "0")
        assert len(upstream.paths()) == 1


async def test_a_large_body_within_the_limit_is_parsed_whole() -> None:
    event = {"event_type": "ai", "action_type": "message", "metadata": {"message": "y" * 1000}}
    body = [{**event, "event_id": str(i), "created_at_timestamp": 10 + i} for i in range(3000)]  # about 3 MB
    with Upstream() as upstream:
        upstream.script(poll=Scripted(200, json.dumps(body).encode()))
        async with FlowHuntClient(upstream_settings(upstream, max_response_bytes=32 * 1024 * 1024)) as client:
            events = await client.poll("sess-1", "0")
    assert [event.event_id for event in events] == [str(i) for i in range(3000)]


def test_the_response_size_limit_defaults_to_32_mib() -> None:
    assert Settings().max_response_bytes == 32 * 1024 * 1024


# -- 4. the whole request within FLOWHUNT_TIMEOUT, and calls within their own deadlines -------------------

DRIP = {"pad": 400, "drip_s": 0.02}  # about 8 s in all, every read within a fraction of a second


async def test_a_dripped_body_is_cut_off_at_flowhunt_timeout() -> None:
    with Upstream() as upstream:
        upstream.script(poll=Scripted(200, b"[]", **DRIP))  # type: ignore[arg-type]
        async with FlowHuntClient(upstream_settings(upstream, timeout=1.0)) as client:
            with anyio.fail_after(5), pytest.raises(TransportError) as raised:
                await client.poll("sess-1", "0")
    assert "FLOWHUNT_TIMEOUT" in str(raised.value)


@pytest.mark.parametrize("endpoint", ["create", "invoke"])
async def test_ask_returns_by_its_own_deadline_when_flowhunt_drips(endpoint: str) -> None:
    with Upstream() as upstream:
        slow = upstream_settings(upstream, workspace_id="ws-1", timeout=30.0, max_retries=4, retry_max_seconds=20)
        body = {"create": b'{"session_id": "sess-1", "created_at": "1"}', "invoke": b'{"created_at": "1000"}'}
        upstream.script(**{endpoint: Scripted(200, body[endpoint], **DRIP)})  # type: ignore[arg-type]
        async with memory_client(slow) as client:
            with anyio.fail_after(6):
                result = await client.call_tool("ask", {"message": "hello", "timeout_seconds": 2})
    assert_handled(result, "ask")
    assert result.is_error
    if endpoint == "invoke":
        # Check before sending again:
        assert 'poll_events(session_id="sess-1", cursor="0")' in text_of(result)


async def test_poll_events_without_a_wait_spends_at_most_one_request_on_a_dripping_flowhunt() -> None:
    with Upstream() as upstream:
        upstream.script(poll=Scripted(200, b"[]", **DRIP))  # type: ignore[arg-type]
        settings = upstream_settings(upstream, timeout=1.0, max_retries=4, retry_max_seconds=20)
        async with memory_client(settings) as client:
            with anyio.fail_after(5):
                result = await client.call_tool("poll_events", {"session_id": "sess-1", "cursor": "0"})
    assert result.is_error and "FLOWHUNT_TIMEOUT" in text_of(result)


# -- 5. Retry-After -------------------------------------------------------------------------------------------

AN_HOUR = Scripted(429, b'{"detail": "slow down"}', {"Retry-After": "3600"})


async def test_an_hour_long_retry_after_is_capped_and_later_calls_fail_at_once_instead_of_hanging() -> None:
    with Upstream() as upstream:
        upstream.script(poll=AN_HOUR)
        async with FlowHuntClient(upstream_settings(upstream, retry_max_seconds=10, max_retry_after=60)) as client:
            with anyio.fail_after(5):
                with pytest.raises(RateLimitError) as first:
                    await client.poll("sess-1", "0")
                upstream.reset()
                with pytest.raises(RateLimitError) as second:
                    await client.poll("sess-1", "0")
    assert first.value.retry_after == 60
    assert second.value.retry_after is not None and 0 < second.value.retry_after <= 60
    assert len(upstream.paths()) == 1  # the paused key sent nothing more


async def test_the_pause_a_retry_after_imposes_ends_at_the_configured_cap() -> None:
    with Upstream() as upstream:
        upstream.script(poll=AN_HOUR)
        async with FlowHuntClient(upstream_settings(upstream, max_retry_after=0.2, retry_max_seconds=5)) as client:
            with anyio.fail_after(5):
                with pytest.raises(RateLimitError):
                    await client.poll("sess-1", "0")
                upstream.reset()
                assert await client.poll("sess-1", "0") == []


async def test_ask_fails_at_once_with_retry_advice_when_the_key_is_paused_past_its_deadline() -> None:
    with Upstream() as upstream:
        upstream.script(create=Scripted(429, b"{}", {"Retry-After": "30"}))
        patient = upstream_settings(
            upstream, workspace_id="ws-1", max_retries=4, retry_max_seconds=60, max_retry_after=60
        )
        async with memory_client(patient) as client:
            with anyio.fail_after(5):
                result = await client.call_tool("ask", {"message": "hello", "timeout_seconds": 2})
    assert result.is_error and "(429). Retry in 30 s." in text_of(result)


def test_the_rate_limit_text_never_says_retry_in_zero_seconds() -> None:
    text = describe(RateLimitError(429, "", retry_after=0.3))
    assert "Retry in 1 s." in text


# -- 16. redaction: scrub first, then cut; URL-encoded keys too ------------------------------------------------

ODD_KEY = "fh/live+SECRET=9d8c7b6a5f4e3d2c"  # characters that URL-encoding changes


async def test_a_key_at_the_cut_of_an_error_detail_leaves_no_prefix_behind() -> None:
    detail = json.dumps({"detail": "x" * 490 + SECRET_KEY}).encode()
    with Upstream() as upstream:
        upstream.script(poll=Scripted(401, detail))
        async with FlowHuntClient(upstream_settings(upstream)) as client:
            with pytest.raises(errors.AuthError) as raised:
                await client.poll("sess-1", "0")
    assert SECRET_KEY[:8] not in str(raised.value) and SECRET_KEY[:8] not in raised.value.detail


def lower_hex(encoded: str) -> str:
    return re.sub("%[0-9A-F]{2}", lambda found: found.group().lower(), encoded)


@pytest.mark.parametrize("encode", [quote_plus, quote, lambda key: lower_hex(quote(key, safe=""))])
async def test_a_url_encoded_key_in_an_error_detail_is_scrubbed(encode: Any) -> None:
    detail = json.dumps({"detail": f"no such key: {encode(ODD_KEY)}"}).encode()
    with Upstream() as upstream:
        upstream.script(poll=Scripted(403, detail))
        async with FlowHuntClient(upstream_settings(upstream, api_key=SecretStr(ODD_KEY))) as client:
            with pytest.raises(errors.AuthError) as raised:
                await client.poll("sess-1", "0")
    assert encode(ODD_KEY) not in str(raised.value) and "[redacted]" in str(raised.value)


async def test_a_key_echoed_in_event_text_never_reaches_a_tool_result() -> None:
    echo: dict[str, Any] = {"event_type": "ai", "action_type": "message", "event_id": "e1", "created_at_timestamp": 2}
    echo["metadata"] = {"message": f"your key is {ODD_KEY}, or {quote_plus(ODD_KEY)}", ODD_KEY: "x" * 300 + ODD_KEY}
    with Upstream() as upstream:
        upstream.script(poll=Scripted(200, json.dumps([echo]).encode()))
        async with memory_client(upstream_settings(upstream, api_key=SecretStr(ODD_KEY))) as client:
            result = await client.call_tool("poll_events", {"session_id": "sess-1", "cursor": "0"})
    assert not result.is_error
    dumped = json.dumps(result.model_dump())
    assert ODD_KEY not in dumped and quote_plus(ODD_KEY) not in dumped and "[redacted]" in dumped


def test_the_log_redactor_scrubs_url_encoded_secrets() -> None:
    redactor = SecretRedactor([ODD_KEY])
    for encoded in (quote_plus(ODD_KEY), quote(ODD_KEY, safe=""), lower_hex(quote(ODD_KEY, safe=""))):
        assert redactor.scrub(f"GET /x?key={encoded}&y=1") == "GET /x?key=[redacted]&y=1"


# -- 17. one request budget per key, shared fairly by callers ------------------------------------------------


async def test_one_callers_flood_does_not_hold_back_another_callers_request(sandbox: SandboxServer) -> None:
    settings = settings_for(sandbox, max_rps=20.0, workspace_id="ws-sandbox")
    async with FlowHuntClient(settings) as client:
        session = (await client.create_session()).session_id

        async def flood_poll() -> None:
            with ratelimit.rate_lane("flooder"):
                await client.poll(session, "0")

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tasks:
                for _ in range(60):
                    tasks.start_soon(flood_poll)
                # The flood queues behind the burst; the gate has no event for a queue length, so its count is read.
                while client.gate.waiting < 30:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
                with ratelimit.rate_lane("other"):
                    await client.create_session()
    paths = [entry["path"] for entry in sandbox.state.request_log()]
    last_create = max(i for i, path in enumerate(paths) if path.endswith("/create"))
    assert sum(1 for path in paths[last_create:] if "invocation_response" in path) >= 25


# -- 20. context_flow_id -------------------------------------------------------------------------------------


@pytest.mark.parametrize("flow_id", ["f" * 129, "f" * 100_000, "a/b", "../../v2/auth/me", "", "f\n"])
@pytest.mark.parametrize("tool", ["ask", "create_session"])
async def test_a_context_flow_id_that_is_not_an_id_is_refused_before_flowhunt_sees_it(tool: str, flow_id: str) -> None:
    with Upstream() as upstream:
        async with memory_client(upstream_settings(upstream, workspace_id="ws-1")) as client:
            result = await client.call_tool(tool, {"message": "hi", "context_flow_id": flow_id})
        assert result.is_error and "context_flow_id" in text_of(result)
        assert not any(path.endswith("/create") for path in upstream.paths())


def test_a_flow_id_like_flowhunts_own_is_accepted() -> None:
    assert arguments.check_context_flow_id("3f1c2b9e-8a7d-4c6b-9e5f-0a1b2c3d4e5f") is not None
    assert arguments.check_context_flow_id(None) is None


# -- 21. poison data degrades one field, never the session ----------------------------------------------------


def event_json(event_id: str, extra: bytes = b"") -> bytes:
    return b'{"event_id": "' + event_id.encode() + b'", "created_at_timestamp": 5, "action_type": "x"' + extra + b"}"


async def test_an_integer_past_pythons_digit_limit_degrades_to_infinity_and_the_poll_succeeds() -> None:
    huge = b"9" * 5000
    body = b"[" + event_json("e1", b', "metadata": {"n": ' + huge + b"}") + b","
    body += event_json("e2", b', "credits": -' + huge) + b"," + event_json("e3") + b"]"
    with Upstream() as upstream:
        upstream.script(poll=Scripted(200, body))
        async with FlowHuntClient(upstream_settings(upstream)) as client:
            events = await client.poll("sess-1", "0")
    assert [event.event_id for event in events] == ["e1", "e2", "e3"]
    assert events[0].meta["n"] == math.inf and events[1].credits == 0.0


async def test_an_invoke_answer_with_an_over_long_message_id_still_sends_the_message() -> None:
    with Upstream() as upstream:
        upstream.script(invoke=Scripted(200, b'{"message_id": ' + b"4" * 5000 + b', "created_at": "1000"}'))
        async with FlowHuntClient(upstream_settings(upstream)) as client:
            invocation = await client.invoke("sess-1", "hello")
    assert invocation.message_id == "inf" and invocation.created_at == "1000"
    assert len([path for path in upstream.paths() if path.endswith("/invoke")]) == 1


async def test_invalid_utf8_in_one_string_degrades_that_string_only() -> None:
    body = b'[{"event_id": "e1", "created_at_timestamp": 5, "event_type": "ai", "action_type": "message",'
    body += b' "metadata": {"message": "caf\xe9 \xed\xa0\x80 ok"}}]'
    with Upstream() as upstream:
        upstream.script(poll=Scripted(200, body))
        async with FlowHuntClient(upstream_settings(upstream)) as client:
            events = await client.poll("sess-1", "0")
    assert len(events) == 1
    message = events[0].meta["message"]
    assert message.startswith("caf\ufffd ") and message.endswith(" ok")
    assert_utf8(message)


async def test_a_workspace_id_that_is_not_an_id_is_a_configuration_error() -> None:
    with Upstream() as upstream:
        upstream.script(me=Scripted(200, rb'{"api_key_workspace_id": "ws-\ud800"}'))
        async with FlowHuntClient(upstream_settings(upstream)) as client:
            with pytest.raises(ConfigurationError) as raised:
                await client.create_session()
    assert "FLOWHUNT_WORKSPACE_ID" in str(raised.value)
    assert not any(path.endswith("/create") for path in upstream.paths())


async def test_poll_events_survives_every_poison_field_at_once() -> None:
    body = b'[{"event_id": "e-\\ud800", "created_at_timestamp": 5, "workspace_id": "w\\udc00", "action_type": "x",'
    body += b' "credits": ' + b"1" * 4400 + b', "metadata": {"\\udfff": "\xff", "n": ' + b"7" * 4400 + b"}}]"
    with Upstream() as upstream:
        upstream.script(poll=Scripted(200, body))
        async with memory_client(upstream_settings(upstream)) as client:
            results = [await client.call_tool("poll_events", {"session_id": "sess-1", "cursor": "0"}) for _ in "ab"]
    for result in results:
        assert not result.is_error, text_of(result)
        assert_utf8(result.model_dump())
        assert (result.structured_content or {})["events"][0]["event_id"] == "e-\ufffd"


# -- 22. user info in the base URL ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["https://user:hunter2pw@api.flowhunt.io", "https://hunter2pw@api.flowhunt.io", "http://:hunter2pw@h:81"]
)
def test_a_base_url_with_user_info_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        Settings(base_url=url)
    message = raised.value.errors()[0]["msg"]
    assert "FLOWHUNT_API_KEY" in message and "hunter2pw" not in message


# -- 402 -----------------------------------------------------------------------------------------------------


async def test_a_402_is_an_out_of_credits_error_that_is_not_retried() -> None:
    with Upstream() as upstream:
        upstream.script(create=Scripted(402, b'{"detail": "Insufficient credits"}'))
        patient = upstream_settings(upstream, workspace_id="ws-1", max_retries=4, retry_max_seconds=10)
        async with FlowHuntClient(patient) as client:
            with pytest.raises(errors.OutOfCreditsError) as raised:
                await client.create_session()
    assert len(upstream.paths()) == 1
    assert "credits" in describe(raised.value)


# -- the sandbox's hostile knobs -----------------------------------------------------------------------------

HOSTILE_KNOBS: dict[str, dict[str, object]] = {
    "lone surrogates": {"rate_surrogate": 0.5},
    "invalid UTF-8": {"rate_bad_utf8": 0.5},
    "oversized bodies": {"rate_oversized": 0.2, "oversized_bytes": 1_000_000.0},
    "dripping bodies": {"rate_drip": 0.2, "drip_s": 1.5},
    "hostile Retry-After": {"rate_429": 0.3, "hostile_retry_after": True},
}


def finished_turn(sandbox: SandboxServer, http: httpx2.Client) -> str:
    """A session whose first turn has run to its answer; the sandbox's own API, no flow_mcp involved."""
    session_id = http.post("/v3/flow-assistants/create", params={"workspace_id": "ws-sandbox"}).json()["session_id"]
    http.post(f"/v3/flow-assistants/{session_id}/invoke", json={"message": "hello"}).raise_for_status()
    give_up = time.monotonic() + 10
    while not any(e["event_type"] == "ai" and e["action_type"] == "message" for e in raw_poll(http, session_id)):
        assert time.monotonic() < give_up, "the sandbox's turn did not finish"
        time.sleep(0.02)  # the sandbox's clock makes the events visible; there is nothing to await
    return session_id


def raw_poll(http: httpx2.Client, session_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = http.post(f"/v3/flow-assistants/{session_id}/invocation_response/0").json()
    return events


@pytest.fixture
def sandbox_http(sandbox: SandboxServer) -> Iterator[httpx2.Client]:
    headers = {"Authorization": f"Bearer {sandbox.config.api_key}"}
    with httpx2.Client(base_url=sandbox.url, headers=headers, timeout=10) as http:
        yield http


@pytest.mark.parametrize("knob", ["rate_surrogate", "rate_bad_utf8"])
def test_the_sandbox_poisons_the_texts_of_flowhunts_answers_but_not_a_persons_message(
    sandbox: SandboxServer, sandbox_http: httpx2.Client, knob: str
) -> None:
    session_id = finished_turn(sandbox, sandbox_http)
    sandbox.state.update_config({knob: 1.0})
    raw = sandbox_http.post(f"/v3/flow-assistants/{session_id}/invocation_response/0").content
    if knob == "rate_surrogate":
        assert b"\\ud800" in raw
        events = json.loads(raw)
        poisoned = "\ud800"
    else:
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")
        events = json.loads(raw.decode("utf-8", "replace"))
        poisoned = "\ufffd"
    messages = {e["event_type"]: e["metadata"]["message"] for e in events if e["action_type"] == "message"}
    assert messages["ai"].endswith(poisoned) and messages["human"] == "hello"


def test_the_sandbox_pads_an_answer_past_oversized_bytes_and_keeps_it_json(
    sandbox: SandboxServer, sandbox_http: httpx2.Client
) -> None:
    session_id = finished_turn(sandbox, sandbox_http)
    sandbox.state.update_config({"rate_oversized": 1.0, "oversized_bytes": 3_000_000.0})
    for _ in range(4):  # plain or as a gzip bomb, drawn each time
        response = sandbox_http.post(f"/v3/flow-assistants/{session_id}/invocation_response/0")
        assert len(response.content) > 3_000_000 and response.json() == raw_poll_without_faults(sandbox, session_id)
    assert sandbox.state.fault_counts()["oversized"] == 4


def raw_poll_without_faults(sandbox: SandboxServer, session_id: str) -> list[dict[str, Any]]:
    session = sandbox.state.get_session(session_id)
    assert session is not None
    return sandbox.state.poll(session, 0)


def test_the_sandbox_drips_an_answer_in_many_pieces(sandbox: SandboxServer, sandbox_http: httpx2.Client) -> None:
    session_id = finished_turn(sandbox, sandbox_http)
    sandbox.state.update_config({"rate_drip": 1.0, "drip_s": 0.5})
    with sandbox_http.stream("POST", f"/v3/flow-assistants/{session_id}/invocation_response/0") as response:
        pieces = [piece for piece in response.iter_raw() if piece]
    assert len(pieces) >= 10 and json.loads(b"".join(pieces))


def test_the_sandbox_sends_hostile_retry_after_values(sandbox: SandboxServer, sandbox_http: httpx2.Client) -> None:
    sandbox.state.update_config({"rate_429": 1.0, "hostile_retry_after": True, "seed": 3})
    values = {sandbox_http.post("/v3/flow-assistants/s/invocation_response/0").headers["retry-after"] for _ in "a" * 30}
    assert {"3600", "1e400", "Fri, 31 Dec 9999 23:59:59 GMT"} <= values


@pytest.mark.parametrize("knobs", list(HOSTILE_KNOBS.values()), ids=list(HOSTILE_KNOBS))
async def test_every_visible_event_is_delivered_exactly_once_from_a_hostile_sandbox(
    sandbox: SandboxServer, knobs: dict[str, object]
) -> None:
    limits = {"max_response_bytes": 200_000, "timeout": 0.5, "max_retry_after": 0.05, "max_retries": 10}
    async with FlowHuntClient(settings_for(sandbox, retry_max_seconds=30, **limits)) as client:
        session_id = (await client.create_session()).session_id
        sandbox.state.update_config({"pacing": 0.3})
        invocation = await client.invoke(session_id, "events:60 please")
        sandbox.state.update_config({**knobs, "seed": 4})
        followed = await follow_turn(client, session_id, decode_cursor(invocation.created_at), deadline_s=60)
    assert followed.status == "completed"
    assert_delivered_exactly_once(sandbox, session_id, followed.delivered)
    for event in followed.delivered:
        assert_utf8(event.model_dump())
    answer = [e for e in followed.delivered if e.event_type == "ai" and e.action_type == "message"][-1]
    assert "events:60 please" in answer.meta["message"].replace("\ufffd", "")
    assert sum(sandbox.state.fault_counts().values()) > 0, "no fault was injected: the test proved nothing"
