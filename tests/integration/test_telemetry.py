"""OpenTelemetry against the sandbox and a real MCP client: the spans of one ask, their links, the trace a client
sends, the metrics, and no secret anywhere; off, nothing is recorded and nothing changes."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import pytest
from mcp import Client
from opentelemetry.sdk.trace import ReadableSpan

from flow_mcp import telemetry
from flow_mcp.config import Settings
from flow_mcp.sandbox import SandboxServer
from flow_mcp.server.app import build_server

from ..support.otel import recording
from ..support.servers import text_of

pytestmark = pytest.mark.anyio

MESSAGE = "Build a flow that greets visitors, and tell nobody the word TELEMETRY-CANARY"
TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
PARENT_ID = 0xB7AD6B7169203331
TRACEPARENT = f"00-{TRACE_ID:032x}-{PARENT_ID:016x}-01"  # what any client sends in _meta (W3C trace context)


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def ask(settings: Settings, **meta: str) -> dict[str, object]:
    async with Client(build_server(settings)) as client:
        with anyio.fail_after(30):
            result = await client.call_tool("ask", {"message": MESSAGE}, meta=meta or None)  # type: ignore[arg-type]
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return result.structured_content


async def test_one_ask_yields_the_tool_span_its_turn_span_and_a_span_per_flowhunt_request(
    sandbox: SandboxServer, settings: Settings
) -> None:
    with recording() as recorded:
        result = await ask(settings)
    assert result["status"] == "completed"
    (tool,) = recorded.named("tool ask")
    (turn,) = recorded.named("turn")
    log = sandbox.state.request_log()
    requests = recorded.requests()
    assert len(requests) == len(log) >= 4  # who-am-I, create, invoke, at least one poll
    assert len(recorded.spans()) == len(log) + 2  # nothing else
    assert parent_of(turn) == tool.context.span_id
    assert {span.context.trace_id for span in recorded.spans()} == {tool.context.trace_id}
    by_template = Counter(attrs(span)["url.template"] for span in requests)
    polls = by_template["/v3/flow-assistants/{session_id}/invocation_response/{from_timestamp}"]
    assert by_template == {
        "/v2/auth/me": 1,
        "/v3/flow-assistants/create": 1,
        "/v3/flow-assistants/{session_id}/invoke": 1,
        "/v3/flow-assistants/{session_id}/invocation_response/{from_timestamp}": polls,
    }
    assert polls == sum(1 for entry in log if "/invocation_response/" in entry["path"])
    for span in requests:
        # The session's own calls are the turn's; finding the workspace and creating the session come before it.
        turn_call = "{session_id}" in span.name
        assert parent_of(span) == (turn.context.span_id if turn_call else tool.context.span_id), span.name
        seen = attrs(span)
        assert span.name == f"{seen['http.request.method']} {seen['url.template']}"
        assert seen["flow_mcp.attempt"] == 1 and "http.request.resend_count" not in seen
    assert [entry["status"] for entry in log] == [attrs(span)["http.response.status_code"] for span in requests]
    assert tool.attributes == {"flow_mcp.tool": "ask", "flow_mcp.session": result["session_id"]}
    assert turn.attributes == {
        "flow_mcp.session": result["session_id"],
        "flowhunt.session.kind": "assistant",
        "flow_mcp.turn.status": "completed",
        "flow_mcp.turn.events": result["events_count"],
        "flow_mcp.turn.polls": polls,
        "flow_mcp.turn.credits": result["credits"],
    }


async def test_the_tool_span_continues_the_trace_a_client_sends_in_meta(settings: Settings) -> None:
    with recording() as recorded:
        await ask(settings, traceparent=TRACEPARENT)
    (tool,) = recorded.named("tool ask")
    assert tool.context.trace_id == TRACE_ID and parent_of(tool) == PARENT_ID
    assert {span.context.trace_id for span in recorded.spans()} == {TRACE_ID}


async def test_the_tool_span_continues_the_trace_in_meta_without_the_sdks_own_span(settings: Settings) -> None:
    # The SDK's OpenTelemetry middleware is provisional (it may move in a 2.x release): flow_mcp reads _meta itself.
    server = build_server(settings)
    server.middleware[:] = [m for m in server.middleware if type(m).__name__ != "OpenTelemetryMiddleware"]
    with recording() as recorded:
        async with Client(server) as client:
            result = await client.call_tool("ask", {"message": MESSAGE}, meta={"traceparent": TRACEPARENT})
    assert not result.is_error, text_of(result)
    (tool,) = recorded.named("tool ask")
    assert tool.context.trace_id == TRACE_ID and parent_of(tool) == PARENT_ID


async def test_a_malformed_traceparent_starts_a_trace_of_its_own(settings: Settings) -> None:
    with recording() as recorded:
        await ask(settings, traceparent="00-not-a-trace-01")
    (tool,) = recorded.named("tool ask")
    assert tool.parent is None and tool.context.trace_id != TRACE_ID


async def test_no_span_or_metric_carries_a_key_or_the_message(sandbox: SandboxServer, settings: Settings) -> None:
    with recording() as recorded:
        await ask(settings, traceparent=TRACEPARENT)
    said = recorded.everything_said()
    assert "tool ask" in said and "flow_mcp.polls" in said  # the search below searched something
    assert sandbox.config.api_key not in said
    assert "TELEMETRY-CANARY" not in said and "greets" not in said
    assert sandbox.config.workspace_id not in said  # the query string is never recorded


async def test_polls_events_and_the_turn_duration_are_measured(sandbox: SandboxServer, settings: Settings) -> None:
    with recording() as recorded:
        result = await ask(settings)
    polls = sum(1 for entry in sandbox.state.request_log() if "/invocation_response/" in entry["path"])
    metrics = recorded.metrics()
    assert metrics[telemetry.POLLS] == [({"flowhunt.session.kind": "assistant"}, polls)]
    assert recorded.total(telemetry.EVENTS) == result["events_count"]
    assert metrics[telemetry.TURN_DURATION] == [
        ({"flow_mcp.turn.status": "completed", "flowhunt.session.kind": "assistant"}, 1)
    ]
    assert telemetry.RETRIES not in metrics and telemetry.RATE_LIMITED not in metrics


async def test_each_retry_has_its_span_and_429s_and_retries_are_counted(
    sandbox: SandboxServer, settings: Settings
) -> None:
    # Polls only: a poll is safe to send again, so every 429 is retried and the turn still completes.
    sandbox.state.update_config({"rate_429": 0.5, "retry_after_s": 0.05, "fault_only": "/invocation_response/"})
    with recording() as recorded:
        result = await ask(settings.model_copy(update={"max_retries": 20}))
    assert result["status"] == "completed"
    log = sandbox.state.request_log()
    limited = sum(1 for entry in log if entry["status"] == 429)
    assert limited > 0, "the sandbox drew no 429: change the seed"
    requests = recorded.requests()
    assert len(requests) == len(log)
    assert sum(1 for span in requests if attrs(span)["http.response.status_code"] == 429) == limited
    assert sum(1 for span in requests if attrs(span).get("error.type") == "RateLimitError") == limited
    resends = [attrs(span) for span in requests if "http.request.resend_count" in attrs(span)]
    assert len(resends) == limited  # each 429 was sent again, once more
    assert all(seen["http.request.resend_count"] == seen["flow_mcp.attempt"] - 1 for seen in resends)
    assert recorded.total(telemetry.RATE_LIMITED) == limited
    assert recorded.total(telemetry.RETRIES) == limited


async def test_a_failing_tool_call_marks_its_span_with_the_error_type_only(settings: Settings) -> None:
    with recording() as recorded:
        async with Client(build_server(settings)) as client:
            result = await client.call_tool("invoke", {"session_id": "no-such-session", "message": MESSAGE})
    assert result.is_error
    (tool,) = recorded.named("tool invoke")
    assert tool.status.status_code.name == "ERROR" and tool.status.description is None
    assert attrs(tool)["error.type"] == "NotFoundError"
    assert "TELEMETRY-CANARY" not in recorded.everything_said()


async def test_with_otel_sdk_disabled_the_server_works_and_records_nothing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    with recording() as recorded:
        result = await ask(settings, traceparent=TRACEPARENT)
        assert not telemetry.is_on()
    assert result["status"] == "completed"
    assert recorded.spans() == [] and recorded.metrics() == {}


async def test_without_a_tracer_provider_telemetry_stays_off_and_the_server_works(settings: Settings) -> None:
    telemetry.install()  # undecided: it decides at the first use, as in a program that set no provider
    result = await ask(settings, traceparent=TRACEPARENT)
    assert result["status"] == "completed"
    assert not telemetry.is_on() and telemetry.span("x") is telemetry.NULL_SPAN
