"""The printed table, the verdict on each target (issues 3 and 13), and the chart (latency vs. requests per turn)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common import JSONDict

LOOPS = ("flow_mcp", "desktop", "fixed_2s")
COMPLETION_SLACK_MS = 150
MCP_OVERHEAD_LIMIT = 1.05
CPU_PER_REQUEST_LIMIT = 1.5  # issue 13: the server's CPU per upstream request against the desktop loop's
SCALE_RSS_LIMIT_MB = 300
SCALE_P95_LIMIT_MS = 1000  # issue 13: 1,000 concurrent turns in one process, p95 under a second


def number(value: Any, digits: int = 0) -> str:
    """A figure with thousands separators, or "-" for none."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def turn_cells(f: JSONDict) -> tuple[str, str, str]:
    """A loop's turns (with any that did not complete), latency p50 / p95 / max and completion p50 / p95."""
    bad = {k: v for k, v in f["outcomes"].items() if k != "completed"}
    note = f" ({', '.join(f'{v} {k}' for k, v in bad.items())})" if bad else ""
    return (
        f"{f['turns']}{note}",
        f"{number(f['latency_p50_ms'])} / {number(f['latency_p95_ms'])} / {number(f['latency_max_ms'])}",
        f"{number(f['completion_p50_ms'])} / {number(f['completion_p95_ms'])}",
    )


def table(results: JSONDict) -> str:
    """Scenario x loop: delivery latency, completion delay, requests and CPU per turn (markdown)."""
    lines = [
        "| scenario | loop | turns | latency p50 / p95 / max (ms) | completion p50 / p95 (ms) | requests/turn "
        "| CPU s/turn | CPU ms/request |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for name, scenario in results["scenarios"].items():
        for loop in LOOPS:
            f = scenario["figures"][loop]
            turns, latency, completion = turn_cells(f)
            lines.append(
                f"| {name} | {loop} | {turns} | {latency} | {completion} "
                f"| {number(f['requests_per_turn'], 1)} | {number(f['cpu_s_per_turn'], 4)} "
                f"| {number(cpu_ms_per_request(f), 2)} |"
            )
    return "\n".join(lines)


def cpu_ms_per_request(figures: JSONDict) -> float | None:
    """CPU milliseconds of the client process per upstream request (create, invoke and polls)."""
    cpu, requests = figures.get("cpu_s_per_turn"), figures.get("requests_per_turn")
    return 1000 * cpu / requests if cpu is not None and requests else None


def scale_table(results: JSONDict) -> str:
    """One server process holding N concurrent turns."""
    lines = [
        "| concurrent turns | peak RSS (MB) | idle RSS (MB) | server CPU s | latency p50 / p95 (ms) "
        "| completion p95 (ms) | requests/turn | wall s | sandbox / MCP client CPU s | outcomes |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for count, s in results["scale"].items():
        lines.append(
            f"| {count} | {number(s['peak_rss_mb'])} | {number(s['idle_rss_mb'])} | {number(s['cpu_s'], 2)} "
            f"| {number(s['latency_p50_ms'])} / {number(s['latency_p95_ms'])} | {number(s['completion_p95_ms'])} "
            f"| {number(s['requests_per_turn'], 1)} | {number(s['wall_s'], 1)} "
            f"| {number(s.get('sandbox_cpu_s'), 1)} / {number(s.get('bench_client_cpu_s'), 1)} | {s['outcomes']} |"
        )
    return "\n".join(lines)


def verdicts(results: JSONDict) -> list[JSONDict]:
    """Each target of issues 3 and 13: met or missed, with the figures."""
    found: list[JSONDict] = []
    settle = results["settle_ms"]
    for name, scenario in results["scenarios"].items():
        f, d, x = (scenario["figures"][loop] for loop in LOOPS)
        ours, desk, fixed = f["latency_p50_ms"], d["latency_p50_ms"], x["latency_p50_ms"]
        ok = None not in (ours, desk, fixed) and ours <= 0.5 * desk and ours <= 0.25 * fixed
        found.append(
            _verdict(
                f"{name}: p50 latency <= 0.5x desktop and <= 0.25x fixed-2s",
                ok,
                f"{number(ours)} ms vs desktop {number(desk)} ms ({_ratio(ours, desk)}) and fixed {number(fixed)} ms "
                f"({_ratio(ours, fixed)})",
            )
        )
        found.append(
            _verdict(
                f"{name}: requests/turn <= desktop",
                f["requests_per_turn"] <= d["requests_per_turn"],
                f"{number(f['requests_per_turn'], 1)} vs {number(d['requests_per_turn'], 1)}",
            )
        )
        ours_cpu, desk_cpu = cpu_ms_per_request(f), cpu_ms_per_request(d)
        found.append(
            _verdict(
                f"{name}: CPU per request <= {CPU_PER_REQUEST_LIMIT}x desktop",
                ours_cpu is not None and desk_cpu is not None and ours_cpu <= CPU_PER_REQUEST_LIMIT * desk_cpu,
                f"{number(ours_cpu, 2)} ms vs {number(desk_cpu, 2)} ms ({_ratio(ours_cpu, desk_cpu)})",
            )
        )
        found.append(
            _verdict(
                f"{name}: completion delay p95 <= settle {settle} ms + {COMPLETION_SLACK_MS} ms",
                f["completion_p95_ms"] is not None and f["completion_p95_ms"] <= settle + COMPLETION_SLACK_MS,
                f"p95 {number(f['completion_p95_ms'])} ms, max {number(f['completion_max_ms'])} ms",
            )
        )
    ratio = results["overhead"]["ratio"]
    found.append(
        _verdict(
            f"MCP overhead <= {MCP_OVERHEAD_LIMIT}x the direct loop",
            ratio is not None and ratio <= MCP_OVERHEAD_LIMIT,
            f"{ratio:.3f}x (median invoke->done)" if ratio is not None else "not measured",
        )
    )
    biggest = max(results["scale"], key=int)
    s = results["scale"][biggest]
    found.append(
        _verdict(
            f"{biggest} concurrent turns: peak RSS < {SCALE_RSS_LIMIT_MB} MB and p95 latency < {SCALE_P95_LIMIT_MS} ms",
            s["peak_rss_mb"] < SCALE_RSS_LIMIT_MB
            and s["latency_p95_ms"] is not None
            and s["latency_p95_ms"] < SCALE_P95_LIMIT_MS,
            f"{number(s['peak_rss_mb'])} MB, p95 {number(s['latency_p95_ms'])} ms",
        )
    )
    return found


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def _verdict(target: str, met: bool, figures: str) -> JSONDict:
    return {"target": target, "met": bool(met), "figures": figures}


def text(results: JSONDict) -> str:
    """Everything a person reads after a run."""
    overhead = results["overhead"]
    ratio = overhead["ratio"]
    lines = [
        table(results),
        "",
        scale_table(results),
        "",
        f"MCP overhead: {ratio:.3f}x over {overhead['turns']} turns" if ratio else "MCP overhead: not measured",
        "",
        *(f"[{'met' if v['met'] else 'MISSED'}] {v['target']}: {v['figures']}" for v in results["verdicts"]),
        f"(wall time {results.get('wall_s', 0):.0f} s)",
    ]
    return "\n".join(lines)


def chart(results: JSONDict, path: Path) -> None:
    """One point per loop and scenario: p50 delivery latency against upstream requests per turn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    colors = {"flow_mcp": "tab:green", "desktop": "tab:blue", "fixed_2s": "tab:red"}
    markers = "osD^vP*X"
    figure, axes = plt.subplots(figsize=(10, 5.5), dpi=110)
    xs: list[float] = []
    ys: list[float] = []
    for index, (name, scenario) in enumerate(results["scenarios"].items()):
        for loop in LOOPS:
            f = scenario["figures"][loop]
            if f["latency_p50_ms"] is None:
                continue
            xs.append(f["requests_per_turn"])
            ys.append(f["latency_p50_ms"])
            axes.scatter(
                f["requests_per_turn"],
                f["latency_p50_ms"],
                color=colors[loop],
                marker=markers[index % len(markers)],
                s=60,
                label=f"{loop} / {name}",
            )
    low_x, high_x, low_y, high_y = min(xs) / 1.2, max(xs) * 1.2, min(ys) / 1.2, max(ys) * 1.2
    axes.set_xlim(low_x, high_x)
    axes.set_ylim(low_y, high_y)
    axes.set_xscale("log")
    axes.set_yscale("log")
    # Round ticks on both log axes: the figures span about one decade each, too few for powers of ten alone.
    axes.set_xticks([t for t in (2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 80, 150, 300) if low_x <= t <= high_x])
    axes.set_yticks([t for t in (50, 100, 200, 300, 500, 1000, 2000, 3000, 5000, 10000, 20000) if low_y <= t <= high_y])
    for axis in (axes.xaxis, axes.yaxis):
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("upstream requests per turn (create + invoke + polls)")
    axes.set_ylabel("p50 event delivery latency (ms)")
    axes.set_title("Polling FlowHunt: delivery latency vs. requests per turn (lower-left is better)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
