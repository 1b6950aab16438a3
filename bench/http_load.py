"""``python -m bench.http_load``: many MCP clients over streamable HTTP against one ``flow-mcp serve --transport http``.

Loopback only, bounded in clients, asks and seconds. A sandbox process (real-time pacing) plays FlowHunt; one
server process (``--stateless``, a bearer token) serves every client; the clients run in this process, each its
own SDK ``Client`` with its own HTTP connection pool.

Load: ``--clients`` clients connect, then all start ``ask`` at once, ``--asks`` times each. Reported: throughput,
errors, the server's CPU and peak RSS, and the latency flow_mcp adds to a turn: when the client had the result,
minus when FlowHunt's last event of the turn existed (the sandbox's own record), minus the settle window
(``FLOW_MCP_SETTLE_SECONDS``, the quiet time flow_mcp waits for on purpose).

Soak: ``--soak-seconds`` of ``--soak-clients`` clients asking in a loop; the server's RSS is sampled every 5 s.
It must not grow: the median of the last quarter of the samples against the median of the second quarter (the
first quarter is warm-up). Exit status 1 if any ask failed or the RSS grew by more than 5 %.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import psutil
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bench.common import (
    API_KEY,
    ROOT,
    Sandbox,
    clean_env,
    cpu_seconds,
    git_commit,
    now_ms,
    percentile,
    sandbox_process,
    stop_process,
)
from flow_mcp.server.callers import SessionHandles, handle_key
from flow_mcp.server.http import SINGLE_TOKEN_NAME

RESULTS = ROOT / "bench" / "results"
TOKEN = "bench-token-5e0f3c9a7b1d2e4f"  # noqa: S105 -- a loopback-only benchmark token
MESSAGE = "Build a flow that answers questions from my docs"  # 11 events over 2.6 s
SETTLE_SECONDS = 1.5
MAX_CLIENTS = 1000
MAX_SOAK_SECONDS = 3600
ASK_GIVE_UP_S = 120.0
# The server keys handles with its FlowHunt key (no FLOW_MCP_SECRET here); the bench holds it, so it can read the
# FlowHunt id inside a handle, to find the turn's events in the sandbox's record.
FLOWHUNT_ID = SessionHandles(handle_key(API_KEY), SINGLE_TOKEN_NAME)


@dataclass
class Sample:
    """One ``ask`` as a client saw it."""

    ok: bool
    session_id: str = ""
    started_ms: float = 0.0
    done_ms: float = 0.0
    error: str = ""


@dataclass
class HttpServer:
    url: str
    process: psutil.Process


@contextmanager
def http_server(sandbox: Sandbox, log_path: Path, **extra: str) -> Iterator[HttpServer]:
    """``flow-mcp serve --transport http --stateless`` on a free loopback port, its log in ``log_path``; ``extra``
    variables override the environment below."""
    env = clean_env(
        FLOWHUNT_BASE_URL=sandbox.url,
        FLOWHUNT_API_KEY=API_KEY,
        FLOW_MCP_TOKEN=TOKEN,
        FLOW_MCP_SETTLE_SECONDS=str(SETTLE_SECONDS),
        # The per-key budget protects FlowHunt; here one key carries every client, and the figure wanted is
        # flow_mcp's own cost, so the budget is raised out of the way.
        FLOW_MCP_MAX_RPS="2000",
        FLOW_MCP_LOG_LEVEL="warning",
    )
    env.update(extra)
    command = [sys.executable, "-m", "flow_mcp", "serve", "--transport", "http", "--port", "0", "--stateless"]
    listening = threading.Event()
    found: list[str] = []
    process = subprocess.Popen(
        command, env={**env, "FLOW_MCP_LOG_LEVEL": "info"}, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )

    def read() -> None:
        assert process.stderr is not None
        with log_path.open("wb") as log:
            for line in process.stderr:
                log.write(line)
                if b'"server_listening"' in line:
                    found.append(json.loads(line)["url"])
                    listening.set()
        listening.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not listening.wait(30) or not found:
            raise RuntimeError(f"flow-mcp did not start; see {log_path}")
        yield HttpServer(found[0], psutil.Process(process.pid))
    finally:
        stop_process(process, 60)  # the graceful stop may wait for running asks


async def client_loop(url: str, start: anyio.Event, samples: list[Sample], asks: int, until: float) -> None:
    """One MCP client: connect, wait for the start, then ask ``asks`` times or until ``until`` (monotonic)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        await client.list_tools()
        await start.wait()
        done = 0
        while done < asks and time.monotonic() < until:
            sample = Sample(ok=False, started_ms=now_ms())
            try:
                with anyio.fail_after(ASK_GIVE_UP_S):
                    result = await client.call_tool("ask", {"message": MESSAGE})
                content = result.structured_content or {}
                sample.ok = not result.is_error and content.get("status") == "completed"
                sample.session_id = FLOWHUNT_ID.open(str(content["session_id"])).id if sample.ok else ""
                sample.error = "" if sample.ok else str(content.get("status") or "tool error")
            except Exception as error:  # every failure is counted and reported; none stops the run
                sample.error = type(error).__name__
            sample.done_ms = now_ms()
            samples.append(sample)
            done += 1


async def run_clients(url: str, clients: int, asks: int, seconds: float) -> tuple[list[Sample], float]:
    samples: list[Sample] = []
    start = anyio.Event()
    until = time.monotonic() + seconds
    async with anyio.create_task_group() as tasks:
        for _ in range(clients):
            tasks.start_soon(client_loop, url, start, samples, asks, until)
        await anyio.sleep(min(5.0, 0.02 * clients))  # let the clients connect before the clock starts
        began = time.monotonic()
        start.set()
    return samples, time.monotonic() - began


def added_latency_ms(sandbox: Sandbox, samples: list[Sample]) -> list[float]:
    """Per ask: result received minus the turn's last FlowHunt event, minus the settle window."""
    added = []
    for sample in samples:
        if sample.ok and sample.session_id:
            last_event = max(int(event["created_at_timestamp"]) for event in sandbox.events(sample.session_id))
            added.append(sample.done_ms - last_event - SETTLE_SECONDS * 1000)
    return added


def load(sandbox: Sandbox, server: HttpServer, clients: int, asks: int) -> dict[str, Any]:
    cpu_before = cpu_seconds(server.process)
    samples, wall = anyio.run(run_clients, server.url, clients, asks, 600.0)
    cpu = cpu_seconds(server.process) - cpu_before
    added = added_latency_ms(sandbox, samples)
    errors = [s.error for s in samples if not s.ok]
    return {
        "clients": clients,
        "asks": len(samples),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "wall_s": round(wall, 2),
        "asks_per_s": round(len(samples) / wall, 2) if wall else None,
        "added_ms": {f"p{q}": round(percentile(added, q) or 0, 1) for q in (50, 95, 99)},
        "server_cpu_s": round(cpu, 2),
        "server_cpu_ms_per_ask": round(1000 * cpu / max(len(samples), 1), 1),
        "server_rss_mb": round(server.process.memory_info().rss / 2**20, 1),
    }


def soak(server: HttpServer, clients: int, seconds: float) -> dict[str, Any]:
    rss: list[float] = []
    stop = threading.Event()

    def sample_rss() -> None:
        while not stop.wait(5.0):
            rss.append(server.process.memory_info().rss / 2**20)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    samples, wall = anyio.run(run_clients, server.url, clients, 10**9, seconds)
    stop.set()
    sampler.join()
    quarter = max(len(rss) // 4, 1)
    early = statistics.median(rss[quarter : 2 * quarter]) if len(rss) >= 4 else None
    late = statistics.median(rss[-quarter:]) if len(rss) >= 4 else None
    growth = (late - early) / early if early and late else None
    return {
        "clients": clients,
        "seconds": round(wall, 1),
        "asks": len(samples),
        "errors": sum(1 for s in samples if not s.ok),
        "rss_mb_samples": [round(x, 1) for x in rss],
        "rss_mb_second_quarter": round(early, 1) if early else None,
        "rss_mb_last_quarter": round(late, 1) if late else None,
        "rss_growth": round(growth, 4) if growth is not None else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="concurrent MCP clients (default 200)")
    parser.add_argument("--asks", type=int, default=3, help="asks per client (default 3)")
    parser.add_argument("--soak-seconds", type=float, default=600.0, help="soak length; 0 skips it (default 600)")
    parser.add_argument("--soak-clients", type=int, default=20, help="clients during the soak (default 20)")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS or not 0 <= args.soak_seconds <= MAX_SOAK_SECONDS:
        parser.error(f"--clients is 1-{MAX_CLIENTS}, --soak-seconds 0-{MAX_SOAK_SECONDS}")
    RESULTS.mkdir(exist_ok=True)
    report: dict[str, Any] = {"commit": git_commit(), "message": MESSAGE, "settle_seconds": SETTLE_SECONDS}
    with (
        sandbox_process(RESULTS / "http-sandbox.log") as sandbox,
        http_server(sandbox, RESULTS / "http-serve.log") as server,
    ):
        report["load"] = load(sandbox, server, args.clients, args.asks)
        print(json.dumps(report["load"], indent=2), file=sys.stderr)
        if args.soak_seconds:
            report["soak"] = soak(server, args.soak_clients, args.soak_seconds)
            print(
                json.dumps({k: v for k, v in report["soak"].items() if k != "rss_mb_samples"}, indent=2),
                file=sys.stderr,
            )
    (RESULTS / "http.json").write_text(json.dumps(report, indent=2) + "\n")
    failed = report["load"]["errors"] or (report.get("soak") or {}).get("errors")
    grew = ((report.get("soak") or {}).get("rss_growth") or 0) > 0.05
    sys.exit(1 if failed or grew else 0)


if __name__ == "__main__":
    main()
