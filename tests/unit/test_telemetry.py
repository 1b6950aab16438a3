"""flow_mcp.telemetry on its own: which exporters the OTEL_* variables ask for, the helpers while off, and a live
span's attributes, tallies and errors (recorded in memory)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flow_mcp import telemetry
from flow_mcp.telemetry import sdk

from ..support.otel import Recorded, recording


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    with recording() as recorded:
        yield recorded


def test_no_otel_variable_asks_for_no_exporter() -> None:
    assert sdk.asked_exporters({}) == {}
    assert sdk.asked_exporters({"OTEL_SERVICE_NAME": "x", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) == {}


def test_an_otlp_endpoint_alone_asks_for_otlp_traces_and_metrics() -> None:
    asked = sdk.asked_exporters({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert asked == {"traces": ["otlp"], "metrics": ["otlp"]}


def test_a_signals_own_endpoint_asks_for_that_signal_only() -> None:
    asked = sdk.asked_exporters({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert asked == {"traces": ["otlp"]}


def test_exporter_lists_are_read_and_none_turns_a_signal_off() -> None:
    environ = {
        "OTEL_TRACES_EXPORTER": " console , otlp ",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
    }
    assert sdk.asked_exporters(environ) == {"traces": ["console", "otlp"]}


def test_otel_sdk_disabled_asks_for_nothing() -> None:
    environ = {"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "console", "OTEL_EXPORTER_OTLP_ENDPOINT": "x"}
    assert sdk.asked_exporters(environ) == {}
    assert sdk.setup_from_environment(environ) == sdk.Setup()


def test_while_off_every_helper_does_nothing() -> None:
    telemetry.install()  # undecided; this process set no provider, so it decides off
    with telemetry.span("x", {"a": 1}) as span:
        span.set({"b": 2})
        telemetry.count(telemetry.POLLS)
        telemetry.record(telemetry.TURN_DURATION, 1.0)
        assert telemetry.current() is telemetry.NULL_SPAN
    assert span is telemetry.NULL_SPAN and not telemetry.is_on()


def test_a_span_sums_the_counts_made_inside_it_into_its_tally(recorded: Recorded) -> None:
    with telemetry.span("outer", tally={telemetry.POLLS: "outer.polls"}):
        telemetry.count(telemetry.POLLS, 2)
        with telemetry.span("inner", tally={telemetry.POLLS: "inner.polls", telemetry.EVENTS: "inner.events"}):
            telemetry.count(telemetry.POLLS)
            telemetry.count(telemetry.EVENTS, 5)
    (outer,) = recorded.named("outer")
    (inner,) = recorded.named("inner")
    assert dict(outer.attributes or {}) == {"outer.polls": 3}
    assert dict(inner.attributes or {}) == {"inner.polls": 1, "inner.events": 5}
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id
    assert recorded.total(telemetry.POLLS) == 3 and recorded.total(telemetry.EVENTS) == 5


def test_attributes_leave_out_none_and_cut_long_text(recorded: Recorded) -> None:
    with telemetry.span("s", {"kept": "x", "dropped": None}) as span:
        span.set({"long": "y" * 10_000, "also_dropped": None})
    (seen,) = recorded.named("s")
    assert dict(seen.attributes or {}) == {"kept": "x", "long": "y" * 256}


def test_an_exception_marks_the_span_with_its_type_and_never_its_text(recorded: Recorded) -> None:
    with pytest.raises(ValueError, match="SECRET-TEXT"), telemetry.span("s"):
        raise ValueError("SECRET-TEXT")
    (seen,) = recorded.named("s")
    assert seen.status.status_code.name == "ERROR" and seen.status.description is None
    assert dict(seen.attributes or {}) == {"error.type": "ValueError"} and not seen.events
    assert "SECRET-TEXT" not in recorded.everything_said()


def test_a_carrier_continues_its_trace_only_when_no_span_is_current(recorded: Recorded) -> None:
    carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    with telemetry.span("remote child", carrier=carrier), telemetry.span("local child", carrier=carrier):
        pass
    (remote,) = recorded.named("remote child")
    (local,) = recorded.named("local child")
    assert remote.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert remote.parent is not None and remote.parent.span_id == 0xB7AD6B7169203331
    assert local.parent is not None and local.parent.span_id == remote.context.span_id


def test_the_turn_duration_uses_buckets_in_seconds(recorded: Recorded) -> None:
    telemetry.record(telemetry.TURN_DURATION, 42.0, {"flow_mcp.turn.status": "completed"})
    data = recorded.reader.get_metrics_data()
    assert data is not None
    (point,) = data.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points
    assert point.explicit_bounds[-1] >= 600 and point.sum == 42.0  # type: ignore[union-attr]
