"""The shape sweep's ratios, its verdicts on issue 13's targets, its tables and its chart (one panel per shape)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common import JSONDict
from bench.report import number, turn_cells

FLOW_LOOPS = ("ask", "chain", "chain_think")
JUDGED = ("ask", "chain")  # think time is the agent's, not the server's: chain_think is shown, not judged
REFERENCE = ("desktop", "fixed_2s")
LOOPS = (*FLOW_LOOPS, *REFERENCE)
COMPLETION_SLACK_MS = 150
LATENCY_VS_DESKTOP = 0.5
LATENCY_VS_FIXED = 0.25


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def ratios(figures: dict[str, JSONDict]) -> dict[str, JSONDict]:
    """Each flow_mcp loop's p50 latency and polls per turn against the reference loops'."""
    desk, fixed = figures.get("desktop", {}), figures.get("fixed_2s", {})
    return {
        loop: {
            "latency_p50_vs_desktop": _div(figures[loop]["latency_p50_ms"], desk.get("latency_p50_ms")),
            "latency_p50_vs_fixed_2s": _div(figures[loop]["latency_p50_ms"], fixed.get("latency_p50_ms")),
            "polls_vs_desktop": _div(figures[loop]["polls_per_turn"], desk.get("polls_per_turn")),
        }
        for loop in FLOW_LOOPS
        if loop in figures
    }


def verdicts(figures: dict[str, JSONDict], settle_ms: int) -> dict[str, dict[str, bool | None]]:
    """Issue 13's targets for ``ask`` and the chain: True met, False missed, None not measurable."""
    desk, fixed = figures["desktop"], figures["fixed_2s"]
    found = {}
    for loop in JUDGED:
        if loop not in figures:
            continue
        mine = figures[loop]
        p50, p50_desk, p50_fixed = mine["latency_p50_ms"], desk["latency_p50_ms"], fixed["latency_p50_ms"]
        complete = mine["completion_p95_ms"]
        found[loop] = {
            "latency": None
            if None in (p50, p50_desk, p50_fixed)
            else p50 <= LATENCY_VS_DESKTOP * p50_desk and p50 <= LATENCY_VS_FIXED * p50_fixed,
            "polls": None
            if None in (mine["polls_per_turn"], desk["polls_per_turn"])
            else mine["polls_per_turn"] <= desk["polls_per_turn"],
            "completion": None if complete is None else complete <= settle_ms + COMPLETION_SLACK_MS,
        }
    return found


def _marks(verdict: dict[str, bool | None] | None) -> str:
    if verdict is None:
        return "-"
    return "".join({True: "✓", False: "✗", None: "?"}[verdict[k]] for k in ("latency", "polls", "completion"))


def _cells(shape: JSONDict, key: str, digits: int = 0) -> str:
    return " / ".join(number(shape["figures"].get(loop, {}).get(key), digits) for loop in LOOPS)


def summary_table(results: JSONDict) -> str:
    """One row per shape: every loop's p50 and p95 latency, polls per turn, completion p95, and the verdicts."""
    order = " / ".join(LOOPS)
    lines = [
        f"| shape | turns | latency p50 (ms): {order} | latency p95 (ms) | polls per turn | completion p95 (ms) "
        "| ask | chain |",
        "|---|--:|--:|--:|--:|--:|:-:|:-:|",
    ]
    for name, shape in results["shapes"].items():
        judged = shape["verdicts"]
        lines.append(
            f"| {name} | {shape['turns']} | {_cells(shape, 'latency_p50_ms')} | {_cells(shape, 'latency_p95_ms')} "
            f"| {_cells(shape, 'polls_per_turn', 1)} | {_cells(shape, 'completion_p95_ms')} "
            f"| {_marks(judged.get('ask'))} | {_marks(judged.get('chain'))} |"
        )
    return "\n".join(lines)


def loop_table(results: JSONDict) -> str:
    """Every shape and loop in full: what a reader checks a summary row against."""
    lines = [
        "| shape | loop | turns | latency p50 / p95 / max (ms) | completion p50 / p95 (ms) | polls / requests per turn "
        "| p50 vs desktop / fixed_2s | events missed |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for name, shape in results["shapes"].items():
        for loop, f in shape["figures"].items():
            turns, latency, completion = turn_cells(f)
            ratio = shape["ratios"].get(loop) or {}
            versus = " / ".join(number(ratio.get(k), 2) for k in ("latency_p50_vs_desktop", "latency_p50_vs_fixed_2s"))
            per_turn = f"{number(f['polls_per_turn'], 1)} / {number(f['requests_per_turn'], 1)}"
            lines.append(
                f"| {name} | {loop} | {turns} | {latency} | {completion} | {per_turn} "
                f"| {versus if ratio else ''} | {f['events_missed']} |"
            )
    return "\n".join(lines)


def _oracle_polls(shape: JSONDict) -> str:
    """``N/D``: the oracle reaches the shape's latency target with N polls per turn; the desktop loop polled D."""
    desk, fixed = shape["figures"].get("desktop"), shape["figures"].get("fixed_2s")
    if not desk or not fixed or None in (desk["latency_p50_ms"], fixed["latency_p50_ms"], desk["polls_per_turn"]):
        return "?"
    target = min(LATENCY_VS_DESKTOP * desk["latency_p50_ms"], LATENCY_VS_FIXED * fixed["latency_p50_ms"])
    points = sorted((p["polls_per_turn"], p["latency_p50_ms"]) for p in shape["frontier"].get("points", []))
    needed = next((polls for polls, p50 in points if p50 <= target), None)
    return f"{'?' if needed is None else needed}/{number(desk['polls_per_turn'], 1)}"


def text(results: JSONDict) -> str:
    """Everything a person reads after a run."""
    loops = results["loops"]
    missed = sum(f["events_missed"] for s in results["shapes"].values() for f in s["figures"].values())
    frontier = [name for name, s in results["shapes"].items() if s.get("frontier") is not None]
    lines = [
        loop_table(results),
        "",
        summary_table(results),
        "",
        "verdicts per flow_mcp path: latency (p50 <= 0.5x desktop and <= 0.25x fixed_2s), polls per turn "
        f"(<= desktop), completion p95 (<= settle {results['settle_ms']} ms + {COMPLETION_SLACK_MS} ms)",
        "per loop over the sweep: "
        + "; ".join(
            f"{loop} CPU {number(v['cpu_s_per_turn'], 4)} s/turn, busiest second {v['peak_requests_per_s']} requests"
            for loop, v in loops.items()
        ),
        f"events missed by any loop: {missed}",
        "oracle (knows the future, no round trip): fewest polls per turn that reach the latency target, "
        "against the desktop loop's polls: "
        + (
            "; ".join(f"{name} {_oracle_polls(results['shapes'][name])}" for name in frontier)
            if frontier
            else "not available (bench.simulate offers no oracle_frontier)"
        ),
        f"load average before {_load(results['load_average_before'])}, after {_load(results['load_average_after'])} "
        f"on {results['cpus']} CPUs; wall time {results.get('wall_s', 0):.0f} s (turns planned: "
        f"{results['planned_s']:.0f} s); commit {results['commit']}",
    ]
    return "\n".join(lines)


def _load(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


COLORS = {
    "ask": "tab:green",
    "chain": "tab:olive",
    "chain_think": "tab:cyan",
    "desktop": "tab:blue",
    "fixed_2s": "tab:red",
}
MARKERS = {"ask": "o", "chain": "s", "chain_think": "^", "desktop": "D", "fixed_2s": "X"}


def _target_box(axes: Any, figures: dict[str, JSONDict]) -> None:
    """Shade where a flow_mcp loop meets the latency and polls targets: at most the desktop loop's polls, p50 at
    most half the desktop loop's and a quarter of the fixed loop's."""
    desk, fixed = figures.get("desktop"), figures.get("fixed_2s")
    if not desk or not fixed or None in (desk["polls_per_turn"], desk["latency_p50_ms"], fixed["latency_p50_ms"]):
        return
    top = min(LATENCY_VS_DESKTOP * desk["latency_p50_ms"], LATENCY_VS_FIXED * fixed["latency_p50_ms"])
    axes.fill_between([0, desk["polls_per_turn"]], 0, top, color="tab:green", alpha=0.12, label="target", linewidth=0)


def chart(results: JSONDict, path: Path) -> None:
    """One small panel per shape: p50 latency against polls per turn, one marker per loop."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = results["shapes"]
    columns = min(5, max(1, len(shapes)))
    rows = (len(shapes) + columns - 1) // columns
    figure, grid = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.7 * rows + 0.8), dpi=100, squeeze=False)
    for axes, (name, shape) in zip(grid.flat, shapes.items(), strict=False):
        _target_box(axes, shape["figures"])
        for loop, f in shape["figures"].items():
            if f["latency_p50_ms"] is None or f["polls_per_turn"] is None:
                continue
            axes.scatter(
                f["polls_per_turn"], f["latency_p50_ms"], color=COLORS[loop], marker=MARKERS[loop], s=42, label=loop
            )
        frontier = shape.get("frontier")
        if frontier and frontier.get("points"):
            xs, ys = zip(*sorted((p["polls_per_turn"], p["latency_p50_ms"]) for p in frontier["points"]), strict=True)
            axes.plot(xs, ys, color="grey", linestyle="--", linewidth=1, label="oracle frontier")
        axes.set_title(f"{name} ({shape['turns']} turns)", fontsize=9)
        axes.set_xlim(left=0)
        axes.set_ylim(bottom=0)
        axes.tick_params(labelsize=7)
        axes.grid(True, alpha=0.3)
        axes.set_xlabel("polls per turn", fontsize=7, labelpad=1)
    for axes in list(grid.flat)[len(shapes) :]:
        axes.axis("off")
    for axes in grid[:, 0]:
        axes.set_ylabel("p50 latency (ms)", fontsize=8)
    handles = {
        label: handle for axes in grid.flat for handle, label in zip(*axes.get_legend_handles_labels(), strict=True)
    }
    figure.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=9)
    commit = str(results["commit"])[:8]
    figure.suptitle(
        f"p50 event latency vs. polls per turn, per shape (lower-left is better; shaded: issue 13's latency and polls "
        f"targets)\ncommit {commit}, {results['mode']} run, load average {results['load_average_before'][0]:.1f} "
        f"at the start on {results['cpus']} CPUs",
        fontsize=10,
    )
    figure.tight_layout(rect=(0, 0.6 / (2.7 * rows + 0.8), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
