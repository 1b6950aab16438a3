"""Shared pieces: the sandbox subprocess, the sandbox's records, process statistics and percentiles."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import psutil

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "fh-bench-key"
WORKSPACE = "ws-bench"
GIVE_UP_S = 300.0  # both reference loops and ask get the same 300 s budget
JSONDict = dict[str, Any]


def now_ms() -> float:
    """Wall-clock epoch milliseconds, the clock of the sandbox's ``created_at_timestamp``."""
    return time.time_ns() / 1_000_000


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of ``values``; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float | None:
    """The middle value (mean of the two middle ones for an even count)."""
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any FlowHunt or flow_mcp setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWHUNT_", "FLOW_MCP_"))}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def git_commit() -> str | None:
    """The commit checked out in this repository (read from .git, no git command), to tie figures to code."""
    git = ROOT / ".git"
    try:
        if git.is_file():  # a worktree: .git names its own directory, which names the shared one (refs live there)
            git = Path(git.read_text().strip().removeprefix("gitdir: "))
        common = git / (git / "commondir").read_text().strip() if (git / "commondir").exists() else git
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head.removeprefix("ref: ")
        for place in (git, common):
            if (place / ref).exists():
                return (place / ref).read_text().strip()
        for line in (common / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        return None
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Sandbox:
    """A sandbox running in its own process, so its work never shares a GIL with a measured client."""

    url: str
    process: subprocess.Popen[bytes]

    def events(self, session_id: str) -> list[JSONDict]:
        """Every event the sandbox scheduled for the session, oldest first (the truth latencies are measured on)."""
        body = self._get(f"/_sandbox/sessions/{session_id}/events")
        return sorted(body, key=lambda event: int(event["created_at_timestamp"]))

    def invoked_at(self, session_id: str) -> int:
        """Epoch ms of the session's (first) invoke, as the sandbox recorded it."""
        return int(self._get(f"/_sandbox/sessions/{session_id}/invocations")[0]["created_at"])

    def requests_by_session(self) -> Counter[str]:
        """Requests on session paths (invoke and polls), by session id, since the last reset."""
        return Counter(session for session, _, _ in self.session_requests())

    def session_requests(self) -> list[tuple[str, str, int]]:
        """(session id, call kind, epoch ms) of every request on a session path since the last reset."""
        found = []
        for entry in self.requests():
            parts = str(entry["path"]).split("/")
            if len(parts) > 4 and parts[1] == "v3":
                found.append((parts[3], str(entry.get("kind")), int(float(entry["at_ms"]))))
        return found

    def requests(self) -> list[JSONDict]:
        """The request log since the last reset (method, path, kind, status, at_ms)."""
        body: list[JSONDict] = self._get("/_sandbox/requests")
        return body

    def reset(self) -> None:
        """Forget the request log (sessions and their events stay)."""
        httpx2.post(self.url + "/_sandbox/reset", timeout=30).raise_for_status()

    def _get(self, path: str) -> Any:
        response = httpx2.get(self.url + path, timeout=60)
        response.raise_for_status()
        return response.json()


@contextmanager
def sandbox_process(log_path: Path, pacing: float = 1.0) -> Iterator[Sandbox]:
    """``python -m flow_mcp.sandbox`` on a free loopback port, real-time pacing, no faults."""
    port = _free_port()
    env = clean_env(
        FLOWHUNT_SANDBOX_PACING=str(pacing),
        FLOWHUNT_SANDBOX_API_KEY=API_KEY,
        FLOWHUNT_SANDBOX_WORKSPACE_ID=WORKSPACE,
        FLOWHUNT_SANDBOX_SEED="7",
    )
    command = [sys.executable, "-m", "flow_mcp.sandbox", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    sandbox = Sandbox(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                sandbox._get("/_sandbox/config")
                break
            except httpx2.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the sandbox did not start; see {log_path}") from None
                time.sleep(0.05)
        yield sandbox
    finally:
        stop_process(process, 10)


def stop_process(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM, then SIGKILL if the process is still there after ``grace_s``."""
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU seconds the process has used so far."""
    times = process.cpu_times()
    return float(times.user + times.system)


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of a Linux process in MB, or None where /proc is not there."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
