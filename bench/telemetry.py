"""What OpenTelemetry costs flow_mcp: the helpers per call, off and on, and FlowHunt polls against the sandbox.

    python -m bench.telemetry            # about half a minute

Off is the default (no provider set, no OTEL_* variables): each helper returns at once. On records into the SDK
with a span processor that drops everything, so the figures are flow_mcp's and the SDK's cost without an
exporter's. The poll figures are whole ``FlowHuntClient.poll`` calls to the sandbox on loopback: what one
request of a turn costs, with and without its span and poll count.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import anyio
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from pydantic import SecretStr

from flow_mcp import telemetry
from flow_mcp.config import Settings
from flow_mcp.flowhunt.client import FlowHuntClient
from flow_mcp.sandbox import SandboxConfig, SandboxServer

ATTRS: telemetry.Attributes = {"http.request.method": "POST", "url.template": "/v3/x/{session_id}", "a": 1}


def _request_path() -> None:
    """The telemetry calls one FlowHunt request makes (client.py): a span with attributes, a status, a count."""
    with telemetry.span("POST /v3/x/{session_id}", ATTRS, kind="client"):
        telemetry.current().set({"http.response.status_code": 200})
    telemetry.count(telemetry.POLLS, 1, {"flowhunt.session.kind": "assistant"})


def per_call_ns(work: Callable[[], None], rounds: int) -> float:
    """Nanoseconds per call of ``work``, less the loop's own cost; the best of five runs."""

    def run(fn: Callable[[], None]) -> float:
        started = time.perf_counter_ns()
        for _ in range(rounds):
            fn()
        return (time.perf_counter_ns() - started) / rounds

    def nothing() -> None:
        pass

    return min(run(work) for _ in range(5)) - min(run(nothing) for _ in range(5))


async def polls_ms(sandbox: SandboxServer, count: int) -> float:
    """Milliseconds per poll of a session with nothing new, averaged over ``count`` polls."""
    settings = Settings(base_url=sandbox.url, api_key=SecretStr(sandbox.config.api_key), max_rps=10_000)
    async with FlowHuntClient(settings) as client:
        session = (await client.create_session()).session_id
        await client.poll(session, "0")  # the connection is open before the clock starts
        started = time.perf_counter()
        for _ in range(count):
            await client.poll(session, "0")
        return (time.perf_counter() - started) * 1000 / count


def measure(rounds: int, polls: int) -> dict[str, tuple[float, float]]:
    """Each figure (off, on)."""
    providers = (TracerProvider(), MeterProvider(metric_readers=[InMemoryMetricReader()]))

    def switch(on: bool) -> None:
        telemetry.install(*providers) if on else telemetry.install()

    def span() -> None:
        with telemetry.span("s", ATTRS) as opened:
            opened.set({"b": 2})

    figures: dict[str, list[float]] = {}
    for on in (False, True):
        switch(on)
        figures.setdefault("span (with and set)", []).append(per_call_ns(span, rounds))
        figures.setdefault("count", []).append(per_call_ns(lambda: telemetry.count(telemetry.POLLS, 1, ATTRS), rounds))
        figures.setdefault("a request's calls", []).append(per_call_ns(_request_path, rounds))
    timings: dict[bool, list[float]] = {False: [], True: []}
    with SandboxServer(SandboxConfig(pacing=0.0)) as sandbox:
        for _ in range(5):  # off and on in turn, so that the machine's mood of the moment weighs on both alike
            for on in (False, True):
                switch(on)
                timings[on].append(anyio.run(polls_ms, sandbox, polls // 5))
    figures["a poll to the sandbox, ms"] = [min(timings[False]), min(timings[True])]
    telemetry.install()
    return {name: (values[0], values[1]) for name, values in figures.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.telemetry", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200_000, help="calls per helper figure")
    parser.add_argument("--polls", type=int, default=400, help="polls per sandbox figure")
    args = parser.parse_args(argv)
    print(f"{'':28} {'off':>10} {'on':>10}")
    for name, (off, on) in measure(args.rounds, args.polls).items():
        if name.endswith("ms"):
            print(f"{name:28} {off:>10.3f} {on:>10.3f}")
        else:
            print(f"{name:28} {off:>7.0f} ns {on:>7.0f} ns")


if __name__ == "__main__":
    main()
