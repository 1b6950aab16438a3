"""The hook for the virtual-time simulator's oracle frontier: what no polling schedule can beat on a shape.

``bench/simulate.py`` (written beside the schedule rewrite) replays the same ``bench.shapes`` steps in virtual
time. When it is there and offers ``oracle_frontier(shape, turns, settle_ms)`` returning a JSON object (with
``points``, a list of ``{polls_per_turn, latency_p50_ms}``, the chart draws it as a line), the sweep reports its
answer per shape, so a target that no schedule can meet on a shape is shown as such rather than as a miss of
flow_mcp's. Until then: None.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from bench.common import JSONDict
from bench.shapes import Step


def oracle_frontier(shape: str, turns: Sequence[Sequence[Step]], settle_ms: int) -> JSONDict | None:
    """The simulator's frontier for these turns of ``shape``, or None while bench.simulate does not offer one."""
    try:
        simulate = importlib.import_module("bench.simulate")
    except ImportError:
        return None
    frontier = getattr(simulate, "oracle_frontier", None)
    if frontier is None:
        return None
    found: JSONDict = frontier(shape, turns, settle_ms)
    return found
