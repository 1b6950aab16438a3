"""flow_mcp's telemetry as tests read it: recorded in process by the OTel SDK's in-memory exporters, or read back
from the JSON lines a ``flow-mcp`` process's console exporter writes to stderr."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from flow_mcp import telemetry

REQUEST_SPAN_PREFIXES = ("GET /", "POST /")  # a FlowHunt request's span: "{method} {path template}"


@dataclass
class Recorded:
    """What flow_mcp recorded while ``recording()`` was open."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans() if span.name == name]

    def requests(self) -> list[ReadableSpan]:
        return [span for span in self.spans() if span.name.startswith(REQUEST_SPAN_PREFIXES)]

    def metrics(self) -> dict[str, list[tuple[dict[str, Any], float]]]:
        """Each metric's points as (attributes, value): a counter's sum, a histogram's count."""
        found: dict[str, list[tuple[dict[str, Any], float]]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found[metric.name] = [
                        (dict(point.attributes or {}), getattr(point, "value", None) or getattr(point, "count", 0))
                        for point in metric.data.data_points
                    ]
        return found

    def total(self, metric: str) -> float:
        return sum(value for _, value in self.metrics().get(metric, []))

    def everything_said(self) -> str:
        """Every span name, attribute and metric attribute recorded, as one text to search for secrets."""
        said: list[Any] = [[span.name, dict(span.attributes or {}), span.status.description] for span in self.spans()]
        said += [[name, points] for name, points in self.metrics().items()]
        return json.dumps(said)


@contextmanager
def recording() -> Iterator[Recorded]:
    """flow_mcp's spans and metrics recorded in memory for the block; the process's global providers stay unset."""
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[reader])
    telemetry.install(tracer_provider, meter_provider)
    try:
        yield Recorded(exporter, reader)
    finally:
        telemetry.install()
        tracer_provider.shutdown()
        meter_provider.shutdown()


def console_spans(stderr: str) -> list[dict[str, Any]]:
    """The spans a process's console exporter wrote to stderr, one JSON object a line among the log lines."""
    spans = []
    for line in stderr.splitlines():
        if line.startswith("{") and '"context"' in line and '"span_id"' in line:
            spans.append(json.loads(line))
    return spans


def console_metric_names(stderr: str) -> set[str]:
    """The names of the metrics a process's console exporter wrote to stderr."""
    names: set[str] = set()
    for line in stderr.splitlines():
        if line.startswith('{"resource_metrics"'):
            for resource in json.loads(line)["resource_metrics"]:
                for scope in resource["scope_metrics"]:
                    names.update(metric["name"] for metric in scope["metrics"])
    return names
