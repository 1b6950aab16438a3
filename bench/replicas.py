"""``python -m bench.replicas``: N ``--stateless`` replicas sharing one FlowHunt key through Redis, against one.

Loopback only, bounded in turns and seconds. A sandbox process (real-time pacing) plays FlowHunt; a redis-server
of the bench's own on a free port holds the shared state; each configuration starts its own ``flow-mcp serve
--transport http --stateless`` processes with one key and ``FLOW_MCP_MAX_RPS`` (default 50), and
``--concurrency`` MCP clients in this process ask ``--turns`` turns in all, spread round robin over the replicas.

Configurations: ``1 replica`` (no Redis, the state in process), ``3 replicas + Redis`` (shared budget, holds,
cancellation), and for reference ``3 replicas, no Redis`` (each with its own budget: what the key's single limit at
FlowHunt would see). Reported per configuration: turns per second, the turn's p50 and p95 (the client's call from
start to result), errors, and the FlowHunt requests of the key: per second on average and in the busiest second.
Results go to bench/results/replicas-<time>.json. Needs redis-server (apt-get install redis-server).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bench.common import ROOT, _free_port, git_commit, percentile, sandbox_process, stop_process
from bench.http_load import TOKEN, HttpServer, http_server

RESULTS = ROOT / "bench" / "results"
MESSAGE = "Build a flow that answers questions from my docs"  # 11 events over 2.6 s at real-time pacing
MAX_TURNS = 5000
GIVE_UP_S = 300.0


@contextmanager
def redis_process(log_path: Path) -> Iterator[str]:
    """A redis-server without persistence on a free loopback port; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: apt-get install redis-server")
    port = _free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        import redis  # the bench's own check that it answers; flow_mcp reaches it through flow_mcp.replicas

        deadline = time.monotonic() + 20
        with redis.Redis(port=port, socket_timeout=2) as probe:
            while True:
                try:
                    probe.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server did not start; see {log_path}") from None
                    time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(process, 10)


async def client_loop(url: str, turns: list[int], samples: list[dict[str, Any]]) -> None:
    """One MCP client on one replica: ask until ``turns`` (shared by all clients) runs out."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        while turns:
            turns.pop()
            started = time.monotonic()
            sample: dict[str, Any] = {"ok": False}
            try:
                with anyio.fail_after(GIVE_UP_S):
                    result = await client.call_tool("ask", {"message": MESSAGE})
                content = result.structured_content or {}
                sample["ok"] = not result.is_error and content.get("status") == "completed"
            except Exception as error:  # counted and reported; none stops the run
                sample["error"] = type(error).__name__
            sample["seconds"] = time.monotonic() - started
            samples.append(sample)


async def drive(urls: list[str], turns: int, concurrency: int) -> tuple[list[dict[str, Any]], float]:
    samples: list[dict[str, Any]] = []
    left = list(range(turns))
    began = time.monotonic()
    async with anyio.create_task_group() as tasks:
        for number in range(concurrency):
            tasks.start_soon(client_loop, urls[number % len(urls)], left, samples)
    return samples, time.monotonic() - began


def busiest_second(stamps: list[int]) -> int:
    stamps, most, first = sorted(stamps), 0, 0
    for last, stamp in enumerate(stamps):
        while stamp - stamps[first] >= 1000:
            first += 1
        most = max(most, last - first + 1)
    return most


def configuration(
    name: str, replicas: int, redis_url: str | None, args: argparse.Namespace, logs: Path
) -> dict[str, Any]:
    extra = {"FLOW_MCP_MAX_RPS": str(args.max_rps), "FLOW_MCP_ASK_TIMEOUT": str(GIVE_UP_S)}
    if redis_url is not None:
        extra["FLOW_MCP_REDIS_URL"] = redis_url
    with sandbox_process(logs / f"sandbox-{replicas}-{bool(redis_url)}.log") as sandbox, ExitStack() as stack:
        servers: list[HttpServer] = [
            stack.enter_context(http_server(sandbox, logs / f"server-{name}-{n}.log".replace(" ", "_"), **extra))
            for n in range(replicas)
        ]
        samples, wall = anyio.run(drive, [s.url for s in servers], args.turns, args.concurrency)
        calls = [entry for entry in sandbox.requests() if entry.get("kind")]
    seconds = [s["seconds"] for s in samples if s["ok"]]
    stamps = [int(entry["at_ms"]) for entry in calls]
    span = (max(stamps) - min(stamps)) / 1000 if stamps else 0
    return {
        "configuration": name,
        "replicas": replicas,
        "redis": redis_url is not None,
        "turns": len(samples),
        "errors": sum(1 for s in samples if not s["ok"]),
        "wall_s": round(wall, 2),
        "turns_per_s": round(len(samples) / wall, 2) if wall else None,
        "turn_p50_s": round(percentile(seconds, 50) or 0, 2),
        "turn_p95_s": round(percentile(seconds, 95) or 0, 2),
        "flowhunt_requests": len(calls),
        "flowhunt_rps_mean": round(len(calls) / span, 1) if span else None,
        "flowhunt_busiest_second": busiest_second(stamps),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=200, help="turns per configuration (default 200)")
    parser.add_argument("--concurrency", type=int, default=60, help="MCP clients asking at once (default 60)")
    parser.add_argument("--max-rps", type=float, default=50.0, help="FLOW_MCP_MAX_RPS of the key (default 50)")
    parser.add_argument("--skip-unshared", action="store_true", help="leave out '3 replicas, no Redis'")
    args = parser.parse_args(argv)
    if not 1 <= args.turns <= MAX_TURNS or not 1 <= args.concurrency <= 1000:
        parser.error(f"--turns must be 1..{MAX_TURNS} and --concurrency 1..1000")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    logs = RESULTS / f"replicas-{stamp}"
    logs.mkdir(parents=True, exist_ok=True)
    rows = []
    with redis_process(logs / "redis.log") as redis_url:
        plan: list[tuple[str, int, str | None]] = [("1 replica", 1, None), ("3 replicas + Redis", 3, redis_url)]
        if not args.skip_unshared:
            plan.append(("3 replicas, no Redis", 3, None))
        for name, replicas, url in plan:
            rows.append(configuration(name, replicas, url, args, logs))
            print(json.dumps(rows[-1]), file=sys.stderr)
    result = {"commit": git_commit(), "max_rps": args.max_rps, "concurrency": args.concurrency, "rows": rows}
    (RESULTS / f"replicas-{stamp}.json").write_text(json.dumps(result, indent=2))
    print("| configuration | turns | errors | turns/s | p50 s | p95 s | FlowHunt req/s (mean) | busiest second |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        cells = ["configuration", "turns", "errors", "turns_per_s", "turn_p50_s", "turn_p95_s", "flowhunt_rps_mean"]
        print("| " + " | ".join(str(row[cell]) for cell in [*cells, "flowhunt_busiest_second"]) + " |")
    return 0 if all(not row["errors"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
