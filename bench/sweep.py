"""``python -m bench.sweep``: every turn shape of ``bench.shapes`` (the mix included), five loops, one run.

One sandbox process (real-time pacing, no faults) plays each turn exactly as ``bench.shapes`` drew it (a
``timeline:`` message). Each loop runs every turn, on its own session, started at the same moment as the other
loops' copy of that turn:

- ``ask``: flow_mcp's ``ask`` over a stdio MCP client to its own ``flow-mcp serve`` (default settings);
- ``chain``: ``create_session``, ``invoke``, then ``poll_events(..., wait_seconds=30)`` called again at once until
  the status is no longer ``running``, over a stdio MCP client to another ``flow-mcp serve``;
- ``chain_think``: the same chain with an agent's think time (0.5-3 s, seeded) before each call after the invoke,
  on a third ``flow-mcp serve``;
- ``desktop`` and ``fixed_2s``: the reference loops of ``bench.refloops``, each in a worker process.

Turns are packed into lanes (longest first, each onto the lane free soonest), so about ``--lanes`` turns per loop
run at once and the whole sweep fits in a few minutes; a turn's slot is its timeline plus the settle window plus
a second. Figures per shape: latency of every event (p50/p95 over all the shape's turns), polls and requests per
turn from the sandbox's request log, completion delay, ratios to the reference loops, the targets' verdicts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from bench import sweep_report
from bench.chain import Chained, chain
from bench.common import JSONDict, Sandbox, cpu_seconds, git_commit, now_ms, sandbox_process
from bench.flowside import Asked, Server, ask, direct_settings, flow_mcp_server
from bench.frontier import oracle_frontier
from bench.measure import Figures, asked_figures, followed_figures, reference_figures
from bench.refloops import run_worker
from bench.shapes import SHAPES, Step, draw, message, offsets_ms

FLOW_LOOPS = ("ask", "chain", "chain_think")
LOOPS = (*FLOW_LOOPS, "desktop", "fixed_2s")
THINK_S = (0.5, 3.0)
WARMUP_S = 3.0  # the worker processes start and import in this time; every loop's first turn starts after it
GAP_S = 1.0
TURNS = {"full": 8, "quick": 3}
MIX_TURNS = {"full": 24, "quick": 8}
LONG_TURNS = {"full": 6, "quick": 2}  # the 20 s and 40 s shapes: about 40 s a turn
LONG_SHAPES = ("tool_20s", "tool_40s")
# The key's request budget (FLOW_MCP_MAX_RPS, 50/s) is shared by every turn of a server: here a loop's eight
# lanes, in use one person's turn. Raised so that no turn waits for the other lanes' polls: the sweep measures the
# schedule, not the budget (bench.run's concurrent100 measures that).
SERVER_ENV = {"FLOW_MCP_MAX_RPS": "1000"}


@dataclass(frozen=True)
class Planned:
    """One turn of one shape, as every loop runs it: its steps and when it starts (seconds after t0)."""

    shape: str
    index: int
    steps: tuple[Step, ...]
    start_s: float
    lane: int

    @property
    def message(self) -> str:
        return message(self.steps)

    @property
    def length_s(self) -> float:
        return offsets_ms(self.steps)[-1] / 1000


def turn_count(shape: str, mode: str, override: int | None) -> int:
    """How many turns of ``shape`` each loop runs."""
    if override is not None:
        return override
    if shape == "mix":
        return MIX_TURNS[mode]
    return LONG_TURNS[mode] if shape in LONG_SHAPES else TURNS[mode]


def plan(shapes: Sequence[str], counts: dict[str, int], seed: int, lanes: int, settle_s: float) -> list[Planned]:
    """Every turn of every shape, longest first, each onto the lane that is free soonest."""
    drawn = [(name, index, steps) for name in shapes for index, steps in enumerate(draw(name, seed, counts[name]))]
    drawn.sort(key=lambda item: -offsets_ms(item[2])[-1])
    free_at = [0.0] * lanes
    planned = []
    for name, index, steps in drawn:
        lane = min(range(lanes), key=lambda i: free_at[i])
        planned.append(Planned(name, index, tuple(steps), free_at[lane], lane))
        free_at[lane] += offsets_ms(steps)[-1] / 1000 + settle_s + GAP_S
    return sorted(planned, key=lambda p: p.start_s)


def _think(seed: int, turn: Planned) -> Callable[[], float]:
    rng = random.Random(f"think:{seed}:{turn.shape}:{turn.index}")
    return lambda: rng.uniform(*THINK_S)


async def _each(turns: Sequence[Planned], t0_ms: float, job: Callable[[Planned, float], Awaitable[Any]]) -> list[Any]:
    """``job(turn, delay)`` for every turn at once, ``delay`` counting to the turn's start; results in plan order."""
    results: list[Any] = [None] * len(turns)

    async def one(position: int, turn: Planned) -> None:
        delay = max(0.0, turn.start_s - (now_ms() - t0_ms) / 1000)
        results[position] = await job(turn, delay)

    async with anyio.create_task_group() as tasks:
        for position, turn in enumerate(turns):
            tasks.start_soon(one, position, turn)
    return results


async def run_loops(
    sandbox: Sandbox, servers: dict[str, Server], turns: Sequence[Planned], seed: int, think: bool
) -> dict[str, Any]:
    """Every loop on every turn, each turn's copies started at the same moment; what each loop saw."""
    t0_ms = now_ms() + WARMUP_S * 1000
    seen: dict[str, Any] = {}
    cpu_before = {name: cpu_seconds(server.process) for name, server in servers.items()}

    async def flow(name: str) -> None:
        client = servers[name].client
        if name == "ask":
            seen[name] = await _each(turns, t0_ms, lambda t, d: ask(client, t.message, d))
        else:
            thinker = (lambda t: _think(seed, t)) if name == "chain_think" else (lambda t: None)
            seen[name] = await _each(turns, t0_ms, lambda t, d: chain(client, t.message, d, thinker(t)))
        seen[f"{name}_cpu_s"] = cpu_seconds(servers[name].process) - cpu_before[name]

    async def reference(loop: str, name: str) -> None:
        starts = [turn.start_s for turn in turns]
        seen[name] = await run_worker(sandbox, loop, starts, [turn.message for turn in turns], t0_ms)
        seen[f"{name}_cpu_s"] = float(seen[name]["cpu_s"])

    async with anyio.create_task_group() as tasks:
        for name in FLOW_LOOPS:
            if name in servers and (think or name != "chain_think"):
                tasks.start_soon(flow, name)
        tasks.start_soon(reference, "desktop", "desktop")
        tasks.start_soon(reference, "fixed", "fixed_2s")
    seen["t0_ms"] = t0_ms
    return seen


Requests = Sequence[tuple[str, str, int]]


def shape_figures(
    sandbox: Sandbox, turns: Sequence[Planned], seen: dict[str, Any], requests: Requests
) -> dict[str, dict[str, Figures]]:
    """Figures per shape and loop, every event checked against the sandbox's record."""
    counts = Counter(session for session, _, _ in requests)
    polls = Counter(session for session, kind, _ in requests if kind == "assistant_poll")
    by_shape: dict[str, list[int]] = defaultdict(list)
    for position, turn in enumerate(turns):
        by_shape[turn.shape].append(position)
    found: dict[str, dict[str, Figures]] = {}
    for shape, positions in by_shape.items():
        chosen = set(positions)
        figures: dict[str, Figures] = {}
        if "ask" in seen:
            asks: list[Asked] = [seen["ask"][p] for p in positions]
            figures["ask"] = asked_figures(sandbox, asks, counts, 0.0, polls)
        for name in ("chain", "chain_think"):
            if name in seen:
                chained: list[Chained] = [seen[name][p] for p in positions]
                figures[name] = followed_figures(sandbox, chained, counts, polls)
        for name in ("desktop", "fixed_2s"):
            mine = {"cpu_s": 0.0, "turns": [t for t in seen[name]["turns"] if t["index"] in chosen]}
            figures[name] = reference_figures(sandbox, mine, counts, polls)
        found[shape] = figures
    return found


def loop_totals(turns: Sequence[Planned], seen: dict[str, Any], requests: Requests) -> dict[str, JSONDict]:
    """Per loop over the whole sweep: CPU per turn of its client process, and its busiest second of requests."""
    owner: dict[str, str] = {}
    for name in (*FLOW_LOOPS, "desktop", "fixed_2s"):
        if name not in seen:
            continue
        if name in ("desktop", "fixed_2s"):
            sessions = [t["session_id"] for t in seen[name]["turns"]]
        else:
            sessions = [t.session_id for t in seen[name]]
        owner.update({session: name for session in sessions if session})
    per_second: dict[str, Counter[int]] = defaultdict(Counter)
    for session, _, at_ms in requests:
        if session in owner:
            per_second[owner[session]][at_ms // 1000] += 1
    return {
        name: {
            "cpu_s_per_turn": seen[f"{name}_cpu_s"] / len(turns) if turns else None,
            "peak_requests_per_s": max(per_second[name].values(), default=0),
        }
        for name in LOOPS
        if name in seen
    }


async def run(args: argparse.Namespace) -> JSONDict:
    """The whole sweep; returns the JSON document."""
    mode = "quick" if args.quick else "full"
    settle_s = direct_settings("http://127.0.0.1:1").settle_seconds
    names = args.shapes or list(SHAPES)
    counts = {name: turn_count(name, mode, args.turns) for name in names}
    turns = plan(names, counts, args.seed, args.lanes, settle_s)
    planned_s = max((t.start_s + t.length_s + settle_s for t in turns), default=0.0)
    _say(f"{len(turns)} turns per loop, {len(names)} shape(s), {args.lanes} lanes: about {planned_s:.0f} s of turns")
    out: Path = args.out
    started = time.strftime("%Y-%m-%d %H:%M:%S %z")
    load_before = os.getloadavg()
    wanted = [name for name in FLOW_LOOPS if args.think or name != "chain_think"]
    with sandbox_process(out / "sweep-sandbox.log") as sandbox:
        async with AsyncExitStack() as stack:
            servers = {}
            for name in wanted:
                serve = flow_mcp_server(sandbox.url, out / f"sweep-serve-{name}.log", **SERVER_ENV)
                servers[name] = await stack.enter_async_context(serve)
            await anyio.to_thread.run_sync(sandbox.reset)
            seen = await run_loops(sandbox, servers, turns, args.seed, args.think)
        load_after = os.getloadavg()
        _say("turns done; reading the sandbox's records")
        requests = await anyio.to_thread.run_sync(sandbox.session_requests)
        figures = await anyio.to_thread.run_sync(shape_figures, sandbox, turns, seen, requests)
        totals = loop_totals(turns, seen, requests)
    settle_ms = round(settle_s * 1000)
    shapes: JSONDict = {}
    for name in names:
        summaries = {loop: {**f.summary(), "raw": _raw(f)} for loop, f in figures[name].items()}
        mine = [t for t in turns if t.shape == name]
        shapes[name] = {
            "what": SHAPES[name].what,
            "turns": len(mine),
            "events_per_turn": sum(len(t.steps) for t in mine) / len(mine),
            "turn_length_s": sum(t.length_s for t in mine) / len(mine),
            "figures": summaries,
            "ratios": sweep_report.ratios(summaries),
            "verdicts": sweep_report.verdicts(summaries, settle_ms),
            "frontier": oracle_frontier(name, [list(t.steps) for t in sorted(mine, key=lambda t: t.index)], settle_ms),
        }
    return {
        "started": started,
        "commit": git_commit(),
        "mode": mode,
        "seed": args.seed,
        "lanes": args.lanes,
        "think_s": list(THINK_S) if args.think else None,
        "server_env": SERVER_ENV,
        "settle_ms": settle_ms,
        "planned_s": planned_s,
        "load_average_before": list(load_before),
        "load_average_after": list(load_after),
        "cpus": os.cpu_count(),
        "loops": totals,
        "shapes": shapes,
        "plan": [
            {"shape": t.shape, "index": t.index, "start_s": t.start_s, "lane": t.lane, "message": t.message}
            for t in turns
        ],
    }


def _raw(figures: Figures) -> JSONDict:
    """Every latency, completion delay and count behind a loop's summary, for whoever wants other statistics."""
    return {
        "latencies_ms": [round(v, 1) for v in figures.latencies_ms],
        "completion_ms": [round(v, 1) for v in figures.completion_ms],
        "polls": figures.polls,
        "requests": figures.requests,
    }


def _say(text: str) -> None:
    sys.stderr.write(f"[sweep] {text}\n")
    sys.stderr.flush()


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 turns a shape (mix 8, 20/40 s shapes 2)")
    parser.add_argument(
        "--shapes",
        type=lambda text: [s for s in text.split(",") if s],
        default=None,
        help=f"comma-separated, of: {', '.join(SHAPES)} (default: all)",
    )
    parser.add_argument("--turns", type=int, default=None, help="turns per shape and loop, for every shape")
    parser.add_argument("--seed", type=int, default=13, help="draws the turns, the mix and the think times")
    parser.add_argument("--lanes", type=int, default=8, help="turns of each loop running at once")
    parser.add_argument("--no-think", dest="think", action="store_false", help="leave out the chain_think loop")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="raw results directory")
    parser.add_argument(
        "--chart", type=Path, default=None, help="PNG (default: bench/sweep.png for a full run, else OUT/sweep.png)"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.shapes or () if name not in SHAPES]
    if unknown:
        parser.error(f"unknown shape(s) {', '.join(unknown)}; known: {', '.join(SHAPES)}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run the sweep; write the JSON and the chart, print the tables and verdicts."""
    args = parse(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results = anyio.run(run, args)
    results["wall_s"] = time.monotonic() - started
    full = not args.quick and args.shapes is None and args.turns is None
    chart = args.chart or (Path(__file__).parent / "sweep.png" if full else args.out / "sweep.png")
    sweep_report.chart(results, chart)
    (args.out / "sweep.json").write_text(json.dumps(results, indent=2))
    sys.stdout.write(sweep_report.text(results) + f"\nJSON: {args.out / 'sweep.json'}  chart: {chart}\n")


if __name__ == "__main__":
    main()
