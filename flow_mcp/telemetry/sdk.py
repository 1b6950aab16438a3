"""The OTel SDK set up from the standard OTEL_* variables: what the ``flow-mcp`` command does at start.

Only when the variables name an exporter (``asked_exporters``) and the ``[otel]`` extra brings the SDK; then the
providers become the global ones and ``flow_mcp.telemetry`` records into them.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from flow_mcp._version import __version__
from flow_mcp.telemetry import disabled_by_environment, install

_SIGNALS = ("traces", "metrics")
_HEADERS = [f"OTEL_EXPORTER_OTLP{signal}_HEADERS" for signal in ("", "_TRACES", "_METRICS", "_LOGS")]
_OTLP_BY_PROTOCOL = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}


@dataclass(frozen=True)
class Setup:
    """What ``setup_from_environment`` did, for the command's log."""

    traces: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # exporters asked for that could not be had, each with what to do

    @property
    def on(self) -> bool:
        return bool(self.traces or self.metrics)


def asked_exporters(environ: Mapping[str, str] = os.environ) -> dict[str, list[str]]:
    """The exporters the OTEL_* variables ask for, by signal (``console``, ``otlp``, ...); none when disabled.

    An unset ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` means ``otlp`` when an OTLP endpoint is set for
    the signal, and nothing otherwise: installing the extra alone never sends anything anywhere.
    """
    if disabled_by_environment(environ):
        return {}
    asked: dict[str, list[str]] = {}
    for signal in _SIGNALS:
        names = environ.get(f"OTEL_{signal.upper()}_EXPORTER", "").strip()
        if not names and (
            environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
        ):
            names = "otlp"
        chosen = [name.strip() for name in names.split(",") if name.strip() and name.strip().lower() != "none"]
        if chosen:
            asked[signal] = chosen
    return asked


def header_secrets(environ: Mapping[str, str] = os.environ) -> list[str]:
    """What the OTLP headers variables carry (a collector's token, say), for the log's redaction: the SDK warns
    about an entry it cannot read (``api-key:TOKEN`` for ``api-key=TOKEN``) by quoting it whole."""
    found: list[str] = []
    for name in _HEADERS:
        for entry in environ.get(name, "").split(","):
            value = re.split("[=:]", entry, maxsplit=1)[-1].strip()
            found += [entry.strip(), value, unquote(value)]
    return [secret for secret in found if secret]


def setup_from_environment(environ: Mapping[str, str] = os.environ) -> Setup:
    """Set the OTel SDK up as the OTEL_* variables ask, as the global providers, and turn telemetry on.

    The SDK reads the rest of the standard variables itself (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
    OTEL_EXPORTER_OTLP_*, OTEL_TRACES_SAMPLER, OTEL_BSP_*, OTEL_METRIC_EXPORT_INTERVAL, OTEL_PROPAGATORS...).
    The console exporters write to stderr, never stdout: on stdio, stdout is the MCP protocol.
    """
    asked = asked_exporters(environ)
    if not asked:
        return Setup()
    try:
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        names = ", ".join(f"OTEL_{signal.upper()}_EXPORTER={','.join(n)}" for signal, n in asked.items())
        return Setup(problems=(f"{names} needs the OpenTelemetry SDK: pip install 'flow-mcp[otel]'",))
    resource = Resource.create({"service.version": __version__})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "flow-mcp"}))
    problems: list[str] = []
    exporters = {signal: _exporters(signal, names, environ, problems) for signal, names in asked.items()}
    tracer_provider = meter_provider = None
    try:
        if exporters.get("traces"):
            tracer_provider = TracerProvider(resource=resource)
            for _, exporter in exporters["traces"]:
                tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
        if exporters.get("metrics"):
            readers = [
                made if isinstance(made, MetricReader) else PeriodicExportingMetricReader(made)
                for _, made in exporters["metrics"]
            ]
            meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    except ValueError as error:
        # The SDK reads OTEL_BSP_*, OTEL_METRIC_EXPORT_* itself and refuses some values (a queue of -5): telemetry
        # stays off, and flow-mcp serves on. Its text names the setting, never a secret.
        for provider in (tracer_provider, meter_provider):
            if provider is not None:
                provider.shutdown()
        said = " ".join(str(error).split())
        problems.append(f"the OpenTelemetry SDK refused an OTEL_* setting ({said}): telemetry is off")
        return Setup(problems=tuple(problems))
    if tracer_provider is not None:
        trace.set_tracer_provider(tracer_provider)
    if meter_provider is not None:
        metrics.set_meter_provider(meter_provider)
    if tracer_provider is not None or meter_provider is not None:
        install(tracer_provider, meter_provider)
        _owned.extend(provider for provider in (tracer_provider, meter_provider) if provider is not None)
    return Setup(
        traces=tuple(name for name, _ in exporters.get("traces", [])),
        metrics=tuple(name for name, _ in exporters.get("metrics", [])),
        problems=tuple(problems),
    )


_owned: list[Any] = []  # the SDK providers setup_from_environment made


def shutdown() -> None:
    """Export what is left and stop the providers ``setup_from_environment`` made.

    They stop by themselves at a normal exit; a process that ends by a signal (uvicorn re-raises SIGTERM once it
    has stopped) calls this first, or loses the last spans.
    """
    while _owned:
        _owned.pop().shutdown()


def _exporters(
    signal: str, names: Iterable[str], environ: Mapping[str, str], problems: list[str]
) -> list[tuple[str, Any]]:
    """The exporters (or metric readers) ``names`` stand for, found as the SDK finds them: by entry point."""
    from importlib.metadata import entry_points

    made: list[tuple[str, Any]] = []
    for name in names:
        entry = name
        if name == "otlp":
            protocol = (
                environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
                or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf"  # the spec's default; the [otel] extra brings this exporter
            ).strip()
            if protocol not in _OTLP_BY_PROTOCOL:
                problems.append(f"OTLP protocol {protocol!r} is not supported: use http/protobuf or grpc")
                continue
            entry = _OTLP_BY_PROTOCOL[protocol]
        found = entry_points(group=f"opentelemetry_{signal}_exporter", name=entry)
        if not found:
            package = f"opentelemetry-exporter-{entry.replace('_', '-')}" if entry.startswith("otlp") else "its package"
            problems.append(f"no {signal} exporter {name!r} is installed (pip install {package})")
            continue
        try:
            kind = next(iter(found)).load()
            made.append((name, kind(**_console_options()) if name == "console" else kind()))
        except Exception as error:  # an exporter that cannot load or refuses its configuration must not stop flow-mcp
            problems.append(f"the {signal} exporter {name!r} could not be made: {type(error).__name__}")
    return made


def _console_options() -> dict[str, Any]:
    # One JSON object a line on stderr, like the log: stdout is the MCP protocol on stdio.
    return {"out": sys.stderr, "formatter": lambda item: item.to_json(indent=None) + "\n"}
