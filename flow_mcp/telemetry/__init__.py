"""OpenTelemetry: spans and metrics through small helpers that cost next to nothing while telemetry is off.

``span(name, attrs)`` (a context manager), ``count(metric, n, attrs)`` and ``record(metric, value, attrs)`` are what
call sites use; ``current()`` (the open span, to add attributes), ``attached(carrier)`` (a caller's trace context)
and ``is_on()`` serve the tool span and the client's request span. This package is the only code of flow_mcp that
imports ``opentelemetry`` (import-linter keeps it so), and it does so only once telemetry is on. It is on when

- the ``flow-mcp`` command set the OTel SDK up from the standard ``OTEL_*`` variables (``sdk.py``: the ``[otel]``
  extra installed and an exporter asked for), or
- the program that embeds flow_mcp set a global TracerProvider of its own (the OTel API's ``set_tracer_provider``,
  or ``opentelemetry-instrument``): flow_mcp's spans and metrics then go to the program's providers, or
- ``install()`` was given providers (tests, or a program that keeps its providers out of the globals);

and ``OTEL_SDK_DISABLED`` is not ``true``. Whether it is on is settled at the first use and kept: set providers up
before the first call. Off, every helper returns at once, and a span is a shared object that does nothing.

Attributes are chosen by the callers never to carry an API key, a token, a handle's key or a message's text; an
exception becomes its type's name (``error.type``) and never its text.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from flow_mcp._version import __version__

Attributes = Mapping[str, str | bool | int | float | None]
SpanKind = Literal["internal", "server", "client"]

# Metrics: the names are the contract with dashboards (docs/observability.md lists them).
POLLS = "flow_mcp.polls"
EVENTS = "flow_mcp.events"
RETRIES = "flow_mcp.flowhunt.retries"
RATE_LIMITED = "flow_mcp.flowhunt.rate_limited"
TURN_DURATION = "flow_mcp.turn.duration"
_INSTRUMENTS: dict[str, tuple[Literal["counter", "histogram"], str, str]] = {
    POLLS: ("counter", "{poll}", "Polls of FlowHunt for a session's events"),
    EVENTS: ("counter", "{event}", "New events taken from FlowHunt, each counted once"),
    RETRIES: ("counter", "{request}", "FlowHunt requests sent again after a failure"),
    RATE_LIMITED: ("counter", "{response}", "FlowHunt answers 429 Too Many Requests"),
    TURN_DURATION: ("histogram", "s", "How long a tool followed a turn, to its end or to the call's time limit"),
}
# Turns take seconds to minutes: the SDK's default buckets (0 to 10 000) are made for milliseconds.
_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
_SCOPE = "flow_mcp"
_MAX_TEXT = 256  # an attribute's text is cut here: a handle fits, a pasted paragraph does not


def disabled_by_environment(environ: Mapping[str, str] = os.environ) -> bool:
    """``OTEL_SDK_DISABLED=true``: OpenTelemetry's own switch for everything."""
    return environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


# -- the helpers ------------------------------------------------------------------------------------------------


class _NullSpan:
    """The span while telemetry is off: one shared object, entered and left at no cost."""

    __slots__ = ()

    def __enter__(self) -> _NullSpan:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def set(self, attrs: Attributes) -> None:
        """Add attributes (off: nothing)."""


NULL_SPAN = _NullSpan()


def span(
    name: str,
    attrs: Attributes | None = None,
    *,
    kind: SpanKind = "internal",
    tally: Mapping[str, str] | None = None,
    carrier: Mapping[str, Any] | None = None,
) -> _NullSpan | _Span:
    """A span around the ``with`` block, child of the current one; its ``set()`` adds attributes as they are known.

    ``tally`` maps a metric to an attribute: what ``count()`` adds to that metric inside the block is summed into
    the attribute (a turn's polls). ``carrier`` holds W3C trace context (``traceparent``; an MCP request's
    ``_meta``, say) to continue when no span is current.
    """
    live = _state()
    if live is None:
        return NULL_SPAN
    return _Span(live, name, attrs, kind, tally, carrier)


def count(metric: str, n: int = 1, attrs: Attributes | None = None) -> None:
    """Add ``n`` to a counter (one of the names above), and to the tallies of the spans open around the call."""
    live = _state()
    if live is None:
        return
    opened = _OPEN.get()
    while opened is not None:
        if metric in opened.tallies:
            opened.tallies[metric] += n
        opened = opened.outer
    live.instrument(metric).add(n, _clean(attrs))


def record(metric: str, value: float, attrs: Attributes | None = None) -> None:
    """Record ``value`` in a histogram (one of the names above)."""
    live = _state()
    if live is not None:
        live.instrument(metric).record(value, _clean(attrs))


def current() -> _NullSpan | _Span:
    """The innermost span of flow_mcp's open here, to add attributes to (off, or none open: the null span)."""
    return _OPEN.get() or NULL_SPAN


def is_on() -> bool:
    """Whether spans and metrics are recorded; for a caller whose attributes cost something to compute."""
    return _state() is not None


# -- on or off ----------------------------------------------------------------------------------------------------


@dataclass
class _Live:
    tracer: Any
    meter: Any
    instruments: dict[str, Any] = field(default_factory=dict)

    def instrument(self, metric: str) -> Any:
        made = self.instruments.get(metric)
        if made is None:
            kind, unit, description = _INSTRUMENTS[metric]
            if kind == "counter":
                made = self.meter.create_counter(metric, unit=unit, description=description)
            else:
                made = self.meter.create_histogram(
                    metric, unit=unit, description=description, explicit_bucket_boundaries_advisory=_DURATION_BUCKETS
                )
            self.instruments[metric] = made
        return made


class _Undecided:
    pass


_UNDECIDED = _Undecided()
_live: _Live | _Undecided | None = _UNDECIDED


def _state() -> _Live | None:
    live = _live
    return _decide() if isinstance(live, _Undecided) else live


def _decide() -> _Live | None:
    """On when the program has set a global TracerProvider, unless OTEL_SDK_DISABLED; kept until ``install()``."""
    global _live
    _live = None
    # A program that set a provider has imported the API: if it is not loaded, nobody did, and it stays unloaded.
    if not disabled_by_environment() and "opentelemetry.trace" in sys.modules:
        from opentelemetry import trace

        tracer_provider = trace.get_tracer_provider()
        if not isinstance(tracer_provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
            from opentelemetry import metrics

            # The meter provider may be set later than the tracer's: the API's proxy meter forwards to it then.
            _live = _Live(tracer_provider.get_tracer(_SCOPE, __version__), metrics.get_meter(_SCOPE, __version__))
    return _live


def install(tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Record into these providers (either may be None: no spans, or no metrics), whatever the globals say, unless
    OTEL_SDK_DISABLED. ``install()`` with neither goes back to deciding at the next use (tests start afresh so).
    """
    global _live
    if tracer_provider is None and meter_provider is None:
        _live = _UNDECIDED
        return
    if disabled_by_environment():
        _live = None
        return
    from opentelemetry import metrics, trace

    tracer = (tracer_provider or trace.NoOpTracerProvider()).get_tracer(_SCOPE, __version__)
    meter = (meter_provider or metrics.NoOpMeterProvider()).get_meter(_SCOPE, __version__)
    _live = _Live(tracer, meter)


# -- a live span --------------------------------------------------------------------------------------------------

_OPEN: ContextVar[_Span | None] = ContextVar("flow_mcp_open_span", default=None)


class _Span:
    """A recording span, current for the ``with`` block (OTel's context and flow_mcp's tallies)."""

    __slots__ = ("_attrs", "_carrier", "_kind", "_live", "_name", "_named", "_otel", "_tokens", "outer", "tallies")

    def __init__(
        self,
        live: _Live,
        name: str,
        attrs: Attributes | None,
        kind: SpanKind,
        tally: Mapping[str, str] | None,
        carrier: Mapping[str, Any] | None,
    ) -> None:
        self._live, self._name, self._attrs, self._kind, self._carrier = live, name, attrs, kind, carrier
        self._named = dict(tally or {})
        self.tallies = dict.fromkeys(self._named, 0)
        self.outer: _Span | None = None
        self._otel: Any = None
        self._tokens: tuple[object, Token[_Span | None]] | None = None

    def __enter__(self) -> _Span:
        from opentelemetry import context, propagate, trace

        parent = None
        if self._carrier and not trace.get_current_span().get_span_context().is_valid:
            parent = _extracted(propagate.extract, self._carrier)
        self._otel = self._live.tracer.start_span(
            self._name, context=parent, kind=trace.SpanKind[self._kind.upper()], attributes=_clean(self._attrs)
        )
        self.outer = _OPEN.get()
        self._tokens = (context.attach(trace.set_span_in_context(self._otel, parent)), _OPEN.set(self))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        from opentelemetry import context, trace

        assert self._tokens is not None
        attach, opened = self._tokens
        try:
            self.set({attribute: self.tallies[metric] for metric, attribute in self._named.items()})
            if exc_type is not None:
                # The type only: an exception's text may quote what a caller sent.
                self._otel.set_attribute("error.type", exc_type.__name__)
                if issubclass(exc_type, Exception):
                    self._otel.set_status(trace.StatusCode.ERROR)
            self._otel.end()
        finally:
            _OPEN.reset(opened)
            context.detach(attach)  # type: ignore[arg-type]  # the token attach() gave

    def set(self, attrs: Attributes) -> None:
        """Add attributes; None values are left out."""
        self._otel.set_attributes(_clean(attrs))


def _clean(attrs: Attributes | None) -> dict[str, str | bool | int | float]:
    if not attrs:
        return {}
    return {k: v[:_MAX_TEXT] if isinstance(v, str) else v for k, v in attrs.items() if v is not None}


def _extracted(extract: Callable[[Mapping[str, Any]], Any], carrier: Mapping[str, Any]) -> Any:
    """The context a carrier holds, or None when it holds no valid span (then the span starts a trace)."""
    from opentelemetry import trace

    try:
        found = extract({k: v for k, v in carrier.items() if isinstance(v, str)})
    except (TypeError, ValueError):
        return None
    return found if trace.get_current_span(found).get_span_context().is_valid else None


def attached(carrier: Mapping[str, Any]) -> _NullSpan | _Attached:
    """A context manager that makes the trace context in ``carrier`` (HTTP headers) current, when it holds one
    and no span is current already; for the MCP SDK's span and ours to continue the caller's trace."""
    live = _state()
    if live is None or "traceparent" not in carrier:
        return NULL_SPAN
    return _Attached(carrier)


class _Attached:
    __slots__ = ("_carrier", "_token")

    def __init__(self, carrier: Mapping[str, Any]) -> None:
        self._carrier = carrier
        self._token: object = None

    def __enter__(self) -> _Attached:
        from opentelemetry import context, propagate, trace

        if not trace.get_current_span().get_span_context().is_valid:
            found = _extracted(propagate.extract, self._carrier)
            if found is not None:
                self._token = context.attach(found)
        return self

    def __exit__(self, *_: object) -> None:
        from opentelemetry import context

        if self._token is not None:
            context.detach(self._token)  # type: ignore[arg-type]  # the token attach() gave

    def set(self, attrs: Attributes) -> None:
        """Nothing: it is not a span."""
