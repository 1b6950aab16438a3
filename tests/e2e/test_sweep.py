"""The shape sweep's harness works end to end: every loop gets every event of a tiny sweep, the JSON is whole.

No timing is asserted: the figures belong to the bench, not to the tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..support.servers import ROOT

pytest.importorskip("psutil", reason="the bench's extra: pip install -e '.[bench]'")
pytest.importorskip("matplotlib", reason="the bench's extra: pip install -e '.[bench]'")

from bench.shapes import draw  # after the skips: bench needs its extra

LOOPS = {"ask", "chain", "chain_think", "desktop", "fixed_2s"}
SHAPES = ("stream_fast", "single")
SEED = 5


def test_a_tiny_sweep_delivers_every_event_to_every_loop(tmp_path: Path) -> None:
    chart = tmp_path / "sweep.png"
    command = [sys.executable, "-m", "bench.sweep", "--shapes", ",".join(SHAPES), "--turns", "1"]
    command += ["--seed", str(SEED), "--out", str(tmp_path), "--chart", str(chart)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=110, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    results = json.loads((tmp_path / "sweep.json").read_text())
    assert set(results["shapes"]) == set(SHAPES)
    assert set(results["loops"]) == LOOPS
    for name in SHAPES:
        shape = results["shapes"][name]
        (steps,) = draw(name, SEED, 1)
        assert set(shape["figures"]) == LOOPS
        for loop, figures in shape["figures"].items():
            assert figures["outcomes"] == {"completed": 1}, (name, loop)
            assert figures["events_missed"] == 0, (name, loop)
            assert figures["events_measured"] == len(steps), (name, loop)
            for key in ("latency_p50_ms", "latency_p95_ms", "completion_p95_ms", "polls_per_turn"):
                assert figures[key] is not None, (name, loop, key)
        assert set(shape["ratios"]) == {"ask", "chain", "chain_think"}
        assert set(shape["verdicts"]) == {"ask", "chain"}
        assert set(shape["verdicts"]["ask"]) == {"latency", "polls", "completion"}
        assert "frontier" in shape
    assert chart.stat().st_size > 0
    assert "events missed by any loop: 0" in done.stdout
