"""``python -m bench``: flow_mcp's polling against the fixed-2 s loop and the desktop-app loop, in one run.

One sandbox process (real-time pacing, no faults) on loopback serves everything. For each scenario the three
loops run their turns at the same moments, concurrently, each in its own process: flow_mcp as ``ask`` calls over
one stdio MCP client to a ``flow-mcp serve`` subprocess (default settings), the reference loops in
``bench.refloops`` workers. CPU is each client process's own CPU time over the scenario. Then: the MCP overhead
(``ask`` vs. the same policy in-process) and one server process holding 100 and 1,000 concurrent turns.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import psutil

from bench import report
from bench.common import (
    JSONDict,
    Sandbox,
    cpu_seconds,
    git_commit,
    peak_rss_mb,
    sandbox_process,
)
from bench.flowside import (
    Asked,
    Followed,
    Server,
    ask,
    direct_settings,
    direct_turn,
    flow_mcp_server,
    log_like_the_server,
)
from bench.measure import (
    asked_figures,
    completion_times,
    followed_figures,
    ratio_of_medians,
    reference_figures,
)
from bench.refloops import run_worker
from flow_mcp.flowhunt.client import FlowHuntClient

DEFAULT_MESSAGE = "Build a flow that answers questions from my docs"
LOOP_NAMES = ("flow_mcp", "desktop", "fixed_2s")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Scenario:
    """A scripted turn, how many turns of it each loop runs, and over how many seconds they start."""

    name: str
    message: str
    what: str
    turns: int
    quick_turns: int
    spread_s: float


SCENARIOS = (
    Scenario("quick", "events:2 please", "3 events within 35 ms", 20, 6, 10.0),
    Scenario("default", DEFAULT_MESSAGE, "11 events over 2.6 s", 20, 6, 10.0),
    Scenario("long", f"long: {DEFAULT_MESSAGE}", "30 events in bursts between 6-18 s tool calls, 62 s", 4, 0, 6.0),
    Scenario("events200", "events:200 please", "201 events within 1.1 s", 10, 4, 5.0),
    Scenario("concurrent100", DEFAULT_MESSAGE, "100 default turns started together", 100, 100, 0.2),
)


def _starts(rng: random.Random, count: int, spread_s: float) -> list[float]:
    return sorted(rng.uniform(0, spread_s) for _ in range(count))


async def _gather(factories: Sequence[Callable[[], Awaitable[_T]]]) -> list[_T]:
    results: list[_T] = []

    async def one(factory: Callable[[], Awaitable[_T]]) -> None:
        results.append(await factory())

    async with anyio.create_task_group() as tasks:
        for factory in factories:
            tasks.start_soon(one, factory)
    return results


async def _asks(server: Server, message: str, starts: list[float]) -> list[Asked]:
    return await _gather([partial(ask, server.client, message, d) for d in starts])


async def run_scenario(sandbox: Sandbox, server: Server, scenario: Scenario, count: int, seed: int) -> JSONDict:
    """All three loops on one scenario, at the same start moments; returns each loop's figures."""
    starts = _starts(random.Random(seed), count, scenario.spread_s)
    await anyio.to_thread.run_sync(sandbox.reset)
    cpu_before = cpu_seconds(server.process)
    outcome: dict[str, Any] = {}

    async def flow() -> None:
        outcome["flow_mcp"] = await _asks(server, scenario.message, starts)
        outcome["flow_cpu"] = cpu_seconds(server.process) - cpu_before

    async def reference(loop: str, key: str) -> None:
        outcome[key] = await run_worker(sandbox, loop, starts, [scenario.message] * len(starts))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(flow)
        tasks.start_soon(reference, "desktop", "desktop")
        tasks.start_soon(reference, "fixed", "fixed_2s")

    def figures() -> JSONDict:
        counts = sandbox.requests_by_session()
        return {
            "flow_mcp": asked_figures(sandbox, outcome["flow_mcp"], counts, outcome["flow_cpu"]).summary(),
            "desktop": reference_figures(sandbox, outcome["desktop"], counts).summary(),
            "fixed_2s": reference_figures(sandbox, outcome["fixed_2s"], counts).summary(),
        }

    return await anyio.to_thread.run_sync(figures)


async def run_overhead(sandbox: Sandbox, server: Server, count: int, seed: int) -> JSONDict:
    """``ask`` over stdio vs. create + invoke + ``follow`` in this process, same settings, same default turn."""
    settings = direct_settings(sandbox.url)
    starts = _starts(random.Random(seed), count, count * 0.8)
    async with FlowHuntClient(settings) as client:
        asks, directs = await _gather_pair(
            _asks(server, DEFAULT_MESSAGE, starts),
            _gather([partial(direct_turn, client, settings, DEFAULT_MESSAGE, d) for d in starts]),
        )

    def figures() -> JSONDict:
        via_mcp = completion_times(sandbox, [(a.session_id, a.done_ms) for a in asks])
        direct = completion_times(sandbox, [(d.session_id, d.done_ms) for d in directs])
        counts = sandbox.requests_by_session()
        return {
            "turns": count,
            "mcp_completion_ms": via_mcp,
            "direct_completion_ms": direct,
            "ratio": ratio_of_medians(via_mcp, direct),
            "direct_figures": followed_figures(sandbox, directs, counts).summary(),
        }

    return await anyio.to_thread.run_sync(figures)


async def _gather_pair(
    first: Awaitable[list[Asked]], second: Awaitable[list[Followed]]
) -> tuple[list[Asked], list[Followed]]:
    box: dict[str, Any] = {}

    async def put(key: str, job: Awaitable[Any]) -> None:
        box[key] = await job

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(put, "a", first)
        tasks.start_soon(put, "b", second)
    return box["a"], box["b"]


async def run_scale(
    sandbox: Sandbox,
    out: Path,
    count: int,
    seed: int,
    *,
    spread_s: float = 0.5,
    message: str = DEFAULT_MESSAGE,
    on_server: Callable[[int], None] | None = None,
) -> JSONDict:
    """A fresh server holding ``count`` concurrent turns (request budget raised): RSS, CPU, latency.

    The turns (``message``'s: a default turn unless told) start within ``spread_s``. ``on_server`` gets the
    server's pid once it is idle, before the turns start (a profiler attaches there).
    """
    async with flow_mcp_server(sandbox.url, out / "serve-scale.log", FLOW_MCP_MAX_RPS="2000") as server:
        await anyio.sleep(0.5)
        idle_mb = server.process.memory_info().rss / 2**20
        if on_server is not None:
            on_server(server.process.pid)
        others = {"sandbox": psutil.Process(sandbox.process.pid), "bench_client": psutil.Process()}
        cpu_before = cpu_seconds(server.process)
        others_before = {name: cpu_seconds(p) for name, p in others.items()}
        sampled = [idle_mb]
        await anyio.to_thread.run_sync(sandbox.reset)
        started = time.monotonic()

        async def sample() -> None:
            while True:
                sampled.append(server.process.memory_info().rss / 2**20)
                await anyio.sleep(0.1)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(sample)
            asks = await _asks(server, message, _starts(random.Random(seed), count, spread_s))
            tasks.cancel_scope.cancel()
        wall = time.monotonic() - started
        cpu = cpu_seconds(server.process) - cpu_before
        others_cpu = {f"{name}_cpu_s": cpu_seconds(p) - others_before[name] for name, p in others.items()}
        hwm = peak_rss_mb(server.process.pid)

    def figures() -> JSONDict:
        summary = asked_figures(sandbox, asks, sandbox.requests_by_session(), cpu).summary()
        return {
            "turns": count,
            "idle_rss_mb": idle_mb,
            "peak_rss_mb": hwm if hwm is not None else max(sampled),
            "cpu_s": cpu,
            "wall_s": wall,
            **others_cpu,
            **summary,
        }

    return await anyio.to_thread.run_sync(figures)


async def run(args: argparse.Namespace) -> JSONDict:
    """Everything, in order; returns the JSON document."""
    out: Path = args.out
    results: JSONDict = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "quick": args.quick,
        "commit": git_commit(),
        "settle_ms": int(direct_settings("http://127.0.0.1:1").settle_seconds * 1000),
        "scenarios": {},
    }
    log_like_the_server(out / "direct.log")
    with sandbox_process(out / "sandbox.log") as sandbox:
        async with flow_mcp_server(sandbox.url, out / "serve.log") as server:
            for index, scenario in enumerate(SCENARIOS):
                count = scenario.quick_turns if args.quick else scenario.turns
                if count == 0:
                    continue
                _say(f"scenario {scenario.name}: {count} turns per loop ({scenario.what})")
                figures = await run_scenario(sandbox, server, scenario, count, seed=index)
                results["scenarios"][scenario.name] = {**asdict(scenario), "figures": figures}
            _say("MCP overhead: ask over stdio vs. the same policy in-process")
            results["overhead"] = await run_overhead(sandbox, server, 4 if args.quick else 10, seed=100)
        results["scale"] = {}
        for count in (100, 300) if args.quick else (100, 1000):
            _say(f"one server holding {count} concurrent turns")
            results["scale"][str(count)] = await run_scale(sandbox, out, count, seed=200 + count)
    return results


def _say(text: str) -> None:
    sys.stderr.write(f"[bench] {text}\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, run, and write the table, the JSON and the chart."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer turns, no 60 s scenario, 300 instead of 1,000")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="raw results directory")
    parser.add_argument(
        "--chart", type=Path, default=None, help="PNG path (default bench/chart.png, or OUT with --quick)"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results = anyio.run(run, args)
    results["wall_s"] = time.monotonic() - started
    results["verdicts"] = report.verdicts(results)
    chart = args.chart or (args.out / "chart.png" if args.quick else Path(__file__).parent / "chart.png")
    report.chart(results, chart)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    sys.stdout.write(report.text(results) + f"\nJSON: {args.out / 'results.json'}  chart: {chart}\n")
