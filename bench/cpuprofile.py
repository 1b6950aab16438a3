"""``python -m bench.cpuprofile``: where one ``flow-mcp serve`` spends its CPU under concurrent turns.

One sandbox, one server (request budget raised, as ``python -m bench``'s scale run), ``--turns`` default turns
started within half a second. With ``--py-spy`` a sampling profiler is attached to the server for the run
(py-spy must be installed: ``pip install py-spy``) and writes a flame graph SVG, or with ``--format raw`` collapsed
stacks, from which the top self and total costs are printed. Without it: the figures alone (server CPU per turn and
per upstream request, latency, RSS), for before/after comparisons. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import anyio

from bench.common import JSONDict, sandbox_process
from bench.run import DEFAULT_MESSAGE, run_scale


def top_frames(collapsed: str, limit: int = 25) -> tuple[list[tuple[str, int]], list[tuple[str, int]], int]:
    """From py-spy's raw (collapsed) stacks: the frames with the most samples on top (self) and anywhere (total).

    Each line is ``frame;frame;...;frame count``; a frame counts once per stack for the total, however deep a
    recursion repeats it.
    """
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    return own.most_common(limit), total.most_common(limit), samples


def _attach(pid: int, path: Path, fmt: str, rate: int, gil: bool) -> subprocess.Popen[bytes]:
    beside = Path(sys.executable).parent / "py-spy"  # installed into the venv, which may not be on PATH
    spy = str(beside) if beside.exists() else "py-spy"
    command = [spy, "record", "--pid", str(pid), "--rate", str(rate), "--format", fmt, "-o", str(path)]
    if gil:
        command.append("--gil")
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def _run(args: argparse.Namespace) -> JSONDict:
    out: Path = args.out
    with sandbox_process(out / "sandbox.log") as sandbox:
        profiler: list[subprocess.Popen[bytes]] = []

        def attach(pid: int) -> None:
            if args.py_spy:
                profiler.append(_attach(pid, args.profile, args.format, args.rate, not args.all_threads))
                time.sleep(1.0)  # py-spy takes a moment to attach

        figures = await run_scale(
            sandbox,
            out,
            args.turns,
            seed=200 + args.turns,
            spread_s=args.spread,
            message=args.message,
            on_server=attach,
        )
        for process in profiler:
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=120)
            if process.returncode:
                sys.stderr.write(err.decode(errors="replace"))
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cpuprofile", description=__doc__)
    parser.add_argument("--turns", type=int, default=300, help="concurrent default turns (default 300)")
    parser.add_argument("--spread", type=float, default=0.5, help="seconds over which the turns start (default 0.5)")
    parser.add_argument(
        "--message", default=DEFAULT_MESSAGE, help='what each turn asks (the sandbox scripts by it: "events:2 please")'
    )
    parser.add_argument("--py-spy", action="store_true", help="attach py-spy to the server for the run")
    parser.add_argument("--format", default="flamegraph", choices=("flamegraph", "raw", "speedscope"))
    parser.add_argument(
        "--all-threads",
        action="store_true",
        help="sample every thread, not only the one holding the GIL (where py-spy cannot tell an idle thread, as in "
        "some containers, waiting threads then count as busy)",
    )
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--profile", type=Path, default=None, help="profile path (default OUT/profile.svg or .txt)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cpuprofile")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.profile is None:
        args.profile = args.out / ("profile.svg" if args.format == "flamegraph" else f"profile.{args.format}.txt")
    figures = anyio.run(_run, args)
    requests = figures["requests_per_turn"]
    cpu_per_turn = figures["cpu_s"] / args.turns
    summary = {
        "turns": args.turns,
        "cpu_s": figures["cpu_s"],
        "cpu_s_per_turn": cpu_per_turn,
        "cpu_ms_per_request": 1000 * cpu_per_turn / requests if requests else None,
        **{
            k: figures[k]
            for k in (
                "requests_per_turn",
                "latency_p50_ms",
                "latency_p95_ms",
                "completion_p95_ms",
                "peak_rss_mb",
                "wall_s",
                "sandbox_cpu_s",
                "bench_client_cpu_s",
            )
        },
        "outcomes": figures["outcomes"],
        "events_missed": figures["events_missed"],
    }
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    if args.py_spy and args.format == "raw" and args.profile.exists():
        own, total, samples = top_frames(args.profile.read_text())
        sys.stdout.write(f"\n{samples} samples. Self:\n")
        for frame, count in own:
            sys.stdout.write(f"  {100 * count / samples:5.1f}%  {frame}\n")
        sys.stdout.write("Total:\n")
        for frame, count in total:
            sys.stdout.write(f"  {100 * count / samples:5.1f}%  {frame}\n")
    if args.py_spy:
        sys.stdout.write(f"profile: {args.profile}\n")


if __name__ == "__main__":
    main()
