"""The built wheel installs into a fresh venv and runs on its own, as `uvx flow-mcp` would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..support.servers import ROOT


@pytest.mark.timeout(600)
def test_the_built_wheel_installs_into_a_fresh_venv_and_runs_the_demo(tmp_path: Path) -> None:
    # What `uvx flow-mcp` does (build or fetch the wheel, install it into a throwaway venv, run the script),
    # with pip: uv itself is not a dependency of this project or its CI.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    wheels = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("flow_mcp-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120, env=env)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    installed = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True, text=True, timeout=400, env=env, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]
    demo = subprocess.run(
        [str(bin_dir / "flow-mcp"), "demo"],
        capture_output=True, text=True, encoding="utf-8", timeout=120, env=env, cwd=tmp_path, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "Demo finished" in demo.stdout
