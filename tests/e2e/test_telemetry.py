"""OpenTelemetry in real ``flow-mcp serve`` processes, set up by the standard OTEL_* variables: console spans on
stderr and never on stdout, OTLP to a collector on loopback, an HTTP client's ``traceparent`` header, no secret
in anything exported; without the SDK the server works and says why it records nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from flow_mcp import telemetry
from flow_mcp.sandbox import SandboxServer

from ..support.httpserver import HttpServer, auth_headers
from ..support.otel import console_metric_names, console_spans
from ..support.servers import ROOT, server_env, teed_server, text_of

pytestmark = pytest.mark.anyio

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
OTHER_TRACE_ID = "5cf92f3577b34da6a3ce929d0e0e4737"
OTHER_TRACEPARENT = f"00-{OTHER_TRACE_ID}-{PARENT_ID}-01"
CONSOLE = {"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "console"}
TOKEN = "otel-token-5b7e2c9a1d3f4e60"
CLIENT_KEY = "fh-client-key-OTEL-8d2c4b6a"
HANDLE_SECRET = "otel-handle-secret-0123456789abcdef0123456789abcdef"
MESSAGE = "a message whose text stays out of telemetry: OTEL-CANARY"


def by_name(spans: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    named: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        named.setdefault(span["name"], []).append(span)
    return named


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_console_exporters_on_stdio_write_to_stderr_and_stdout_stays_json_rpc(
    sandbox: SandboxServer, tmp_path: Path, mode: str
) -> None:
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with anyio.fail_after(60):
        async with Client(teed_server(server_env(sandbox, **CONSOLE), out, err), mode=mode) as client:
            result = await client.call_tool("ask", {"message": MESSAGE}, meta={"traceparent": TRACEPARENT})
    assert not result.is_error, text_of(result)
    for line in out.read_bytes().decode("utf-8").splitlines():
        assert json.loads(line)["jsonrpc"] == "2.0"
    stderr = err.read_text("utf-8")
    named = by_name(console_spans(stderr))
    (tool,) = named["tool ask"]
    (turn,) = named["turn"]
    (sdk,) = named["tools/call ask"]  # the MCP SDK's own span: the tool span is its child
    assert sdk["parent_id"] == f"0x{PARENT_ID}" and tool["parent_id"] == sdk["context"]["span_id"]
    assert turn["parent_id"] == tool["context"]["span_id"]
    assert tool["context"]["trace_id"] == turn["context"]["trace_id"] == f"0x{TRACE_ID}"
    requests = [span for name, spans in named.items() if name.startswith("POST /") for span in spans]
    assert len(requests) == sum(1 for entry in sandbox.state.request_log() if entry["method"] == "POST")
    assert tool["resource"]["attributes"]["service.name"] == "flow-mcp"
    assert {telemetry.POLLS, telemetry.EVENTS, telemetry.TURN_DURATION} <= console_metric_names(stderr)
    assert "OTEL-CANARY" not in "".join(line for line in stderr.splitlines() if '"span_id"' in line)
    assert '"telemetry_on"' in stderr


async def test_an_http_clients_traceparent_header_is_continued_and_no_secret_is_exported(
    sandbox: SandboxServer,
) -> None:
    env = server_env(sandbox, FLOWHUNT_API_KEY="", FLOW_MCP_TOKEN=TOKEN, FLOW_MCP_SECRET=HANDLE_SECRET, **CONSOLE)
    sandbox.config.update({"team_keys": f"{CLIENT_KEY}=ws-otel"})
    headers = {**auth_headers(TOKEN, CLIENT_KEY), "traceparent": TRACEPARENT}
    with HttpServer(env, "--flowhunt-key-from-client") as server:
        async with (
            httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120)) as http,
            Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client,
        ):
            with anyio.fail_after(60):
                result = await client.call_tool("ask", {"message": MESSAGE})
                # A traceparent in _meta, the MCP request's own carrier, comes before the HTTP header's.
                second = await client.call_tool("ask", {"message": MESSAGE}, meta={"traceparent": OTHER_TRACEPARENT})
        assert not result.is_error and not second.is_error, text_of(result)
        _, stdout = server.stop()
    assert stdout == ""
    named = by_name(console_spans(server.stderr))
    tool, other = sorted(named["tool ask"], key=lambda span: span["start_time"])
    assert tool["context"]["trace_id"] == f"0x{TRACE_ID}"
    assert other["context"]["trace_id"] == f"0x{OTHER_TRACE_ID}"
    assert tool["attributes"]["flow_mcp.session"] == result.structured_content["session_id"]  # type: ignore[index]
    exported = "\n".join(line for line in server.lines if '"span_id"' in line or "resource_metrics" in line)
    raw_ids = {entry["path"].split("/")[3] for entry in sandbox.state.request_log() if "/invoke" in entry["path"]}
    assert raw_ids and exported
    for secret in (TOKEN, CLIENT_KEY, HANDLE_SECRET, "OTEL-CANARY", *raw_ids):
        assert secret not in exported  # over HTTP a session is named by its handle, never by FlowHunt's id


class _Collector(ThreadingHTTPServer):
    """An OTLP/HTTP collector on loopback: keeps every export it is sent, by path."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CollectorHandler)
        self.received: dict[str, list[bytes]] = {}
        self.got_traces = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _CollectorHandler(BaseHTTPRequestHandler):
    server: _Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.setdefault(self.path, []).append(body)
        if self.path == "/v1/traces":
            self.server.got_traces.set()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass  # the test's output is for its failures


@pytest.fixture
def collector() -> Iterator[_Collector]:
    server = _Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


async def test_otlp_over_http_reaches_a_collector_with_the_spans_and_metrics(
    sandbox: SandboxServer, collector: _Collector
) -> None:
    env = server_env(sandbox, OTEL_EXPORTER_OTLP_ENDPOINT=collector.url, OTEL_SERVICE_NAME="flow-mcp-e2e")
    with HttpServer(env) as server:
        async with (
            httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=120)) as http,
            Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client,
        ):
            with anyio.fail_after(60):
                result = await client.call_tool("ask", {"message": MESSAGE}, meta={"traceparent": TRACEPARENT})
        assert not result.is_error, text_of(result)
        _, stdout = server.stop()  # SIGTERM: the providers flush before the process ends by the signal
    assert stdout == ""
    assert collector.got_traces.wait(10), server.stderr
    spans = []
    for body in collector.received["/v1/traces"]:
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
            spans += [(service, span) for scope in resource.scope_spans for span in scope.spans]
    names = {span.name for _, span in spans}
    assert {"tool ask", "turn", "POST /v3/flow-assistants/{session_id}/invoke"} <= names
    assert {service for service, _ in spans} == {"flow-mcp-e2e"}
    assert all(span.trace_id.hex() == TRACE_ID for _, span in spans if span.name in ("tool ask", "turn"))
    metrics = {
        metric.name
        for body in collector.received.get("/v1/metrics", [])
        for resource in ExportMetricsServiceRequest.FromString(body).resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert {telemetry.POLLS, telemetry.EVENTS, telemetry.TURN_DURATION} <= metrics


async def test_without_the_sdk_the_server_works_and_says_how_to_get_telemetry(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    # As if the [otel] extra were not installed: the OTel SDK cannot be imported in the server process.
    blocker = tmp_path / "no_sdk"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['opentelemetry.sdk'] = None\n")
    env = server_env(sandbox, **CONSOLE)
    env["PYTHONPATH"] = f"{blocker}:{env['PYTHONPATH']}"
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with anyio.fail_after(60):
        async with Client(teed_server(env, out, err)) as client:
            result = await client.call_tool("ask", {"message": MESSAGE}, meta={"traceparent": TRACEPARENT})
    assert not result.is_error and result.structured_content is not None, text_of(result)
    assert result.structured_content["status"] == "completed"
    stderr = err.read_text("utf-8")
    (warning,) = [json.loads(line) for line in stderr.splitlines() if '"telemetry_not_set_up"' in line]
    assert "flow-mcp[otel]" in warning["problem"]
    assert console_spans(stderr) == [] and console_metric_names(stderr) == set()
    for line in out.read_bytes().decode("utf-8").splitlines():
        assert json.loads(line)["jsonrpc"] == "2.0"


@pytest.mark.parametrize(
    "refused",
    [
        {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_MAX_QUEUE_SIZE": "-5"},
        {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "0"},
        {"OTEL_METRICS_EXPORTER": "console", "OTEL_METRIC_EXPORT_INTERVAL": "-1"},
    ],
)
async def test_an_otel_setting_the_sdk_refuses_leaves_the_server_working_and_says_so(
    sandbox: SandboxServer, tmp_path: Path, refused: dict[str, str]
) -> None:
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with anyio.fail_after(60):
        async with Client(teed_server(server_env(sandbox, **refused), out, err)) as client:
            result = await client.call_tool("ask", {"message": MESSAGE})
    assert not result.is_error and result.structured_content is not None, text_of(result)
    stderr = err.read_text("utf-8")
    (warning,) = [json.loads(line) for line in stderr.splitlines() if '"telemetry_not_set_up"' in line]
    assert "OTEL_" in warning["problem"]
    assert console_spans(stderr) == [] and console_metric_names(stderr) == set()


def test_a_collector_token_in_a_malformed_otlp_header_stays_out_of_the_log() -> None:
    # "name:value" instead of "name=value": the SDK's warning quotes the whole entry, token and all.
    token = "collector-token-CANARY-7f3e"
    env = server_env(
        None, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:1", OTEL_EXPORTER_OTLP_HEADERS=f"api-key:{token}"
    )
    done = subprocess.run(
        [sys.executable, "-m", "flow_mcp", "serve", "--sandbox"],
        env=env,
        input="",  # the host closes stdin at once: the server starts, sets telemetry up and stops
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "opentelemetry.util.re" in done.stderr  # the SDK did warn about the header
    assert token not in done.stderr and done.stdout == ""


_IMPORTS_AFTER_AN_ASK = """
import json, sys
import anyio
from mcp import Client
from flow_mcp.sandbox import SandboxConfig, SandboxServer
from flow_mcp.server.app import build_server
from tests.support.servers import settings_for

async def main():
    with SandboxServer(SandboxConfig(pacing=0.02)) as sandbox:
        async with Client(build_server(settings_for(sandbox))) as client:
            result = await client.call_tool("ask", {"message": "hello"})
    assert result.structured_content["status"] == "completed"

anyio.run(main)
print(json.dumps(sorted(name for name in sys.modules if name.startswith("opentelemetry"))))
"""


def test_a_process_without_otel_settings_loads_no_sdk_and_no_metrics_api() -> None:
    env = {k: v for k, v in server_env(None).items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS_AFTER_AN_ASK], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert "opentelemetry.trace" in loaded  # the MCP SDK's own import: its spans are no-ops without a provider
    assert not [name for name in loaded if name.startswith(("opentelemetry.sdk", "opentelemetry.metrics"))]


_A_PROGRAM_WITH_ITS_OWN_PROVIDER = """
import json, sys, time
import anyio
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from flow_mcp import FlowHuntClient, Settings, follow, send_message

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)  # before flow_mcp's first call
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

async def main():
    with trace.get_tracer("program").start_as_current_span("program"):
        async with FlowHuntClient(Settings()) as flowhunt:
            session = await flowhunt.create_session()
            sent = await send_message(flowhunt, session.session_id, "hello", new_session=True)
            await follow(flowhunt, session.session_id, sent.cursor, deadline=time.monotonic() + 30)

anyio.run(main)
spans = exporter.get_finished_spans()
(program,) = [span for span in spans if span.name == "program"]
children = [[span.name, span.parent.span_id == program.context.span_id] for span in spans if span.parent]
data = reader.get_metrics_data()
names = [m.name for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics]
print(json.dumps({"spans": children, "metrics": names}))
"""


def test_a_program_with_its_own_providers_gets_the_clients_request_spans_and_metrics(sandbox: SandboxServer) -> None:
    env = {k: v for k, v in server_env(sandbox).items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", _A_PROGRAM_WITH_ITS_OWN_PROVIDER],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    spans = seen["spans"]
    names = [name for name, _ in spans]
    assert "POST /v3/flow-assistants/create" in names and "POST /v3/flow-assistants/{session_id}/invoke" in names
    assert len(names) == len(sandbox.state.request_log())
    assert all(child_of_program for _, child_of_program in spans)
    assert {telemetry.POLLS, telemetry.EVENTS} <= set(seen["metrics"])
