"""``python -m bench.startup``: how long a host waits for flow_mcp's tools, from process start.

Each run starts ``python -m flow_mcp serve`` (``--console-script``: the ``flow-mcp`` script beside the
interpreter) with FlowHunt unreachable (``FLOWHUNT_BASE_URL=http://127.0.0.1:9``, a dummy key), writes
``initialize``, ``notifications/initialized`` and ``tools/list`` as JSON-RPC lines, and stops the clock when the
``tools/list`` response has been read: what an MCP host waits for before it can show the tools. One warm-up run
first, then the median and p90 of ``--runs`` runs, and the server's CPU time by the answer (Linux), which other
work on a shared machine disturbs less than the wall clock.

By default the server is this checkout run by this interpreter. ``--python`` runs it with another interpreter
and the packages installed for it: a venv with ``pip install flow-mcp`` and nothing else is what hosts start,
and a dev venv has more (rich, which structlog then imports). ``--installed`` measures that interpreter's
installed flow_mcp instead of this checkout. ``--against DIR`` measures another checkout too (``git worktree add
DIR COMMIT``), run for run in turn with the first, so both see the same load: a before/after on one machine.
Bytecode caches are written either way (PYTHONDONTWRITEBYTECODE is dropped for the server): an installed package
has its bytecode compiled at install time, and without caches every start would compile flow_mcp anew.

``--floor`` adds the MCP SDK's own server with one tool and nothing of flow_mcp: what no change to flow_mcp can
go below. ``--importtime``: one more run under ``python -X importtime``, and the modules that took longest to import,
by their own time and by the time of everything they imported.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT, JSONDict, clean_env, git_commit, median, percentile, stop_process

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback, a connect fails at once
TIMEOUT_S = 30.0  # one run gives up after this long
_INITIALIZE: JSONDict = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}},
}
_INITIALIZED: JSONDict = {"jsonrpc": "2.0", "method": "notifications/initialized"}
_TOOLS_LIST: JSONDict = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
# The floor: the SDK's own server with one tool, over stdio, nothing of flow_mcp.
FLOOR = """\
from mcp.server.mcpserver import MCPServer
server = MCPServer("floor")
@server.tool()
def echo(text: str) -> str:
    \"\"\"Echo the text.\"\"\"
    return text
server.run("stdio")
"""
_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


@dataclass(frozen=True)
class Server:
    """How to start the server: with which interpreter, and from which checkout (None: the one installed)."""

    python: str
    checkout: Path | None
    console_script: bool = False
    code: str | None = None  # a program to run instead of flow_mcp (the floor)

    @property
    def name(self) -> str:
        return "the floor (the MCP SDK alone)" if self.code else f"flow_mcp of {self.checkout or 'installed'}"

    def command(self, *python_flags: str) -> list[str]:
        if self.code:
            return [self.python, *python_flags, "-c", self.code]
        if self.console_script and not python_flags:
            return [str(Path(self.python).with_name("flow-mcp")), "serve"]
        return [self.python, *python_flags, "-m", "flow_mcp", "serve"]

    def env(self) -> dict[str, str]:
        env = clean_env(FLOWHUNT_BASE_URL=UNREACHABLE, FLOWHUNT_API_KEY="fh-bench-dummy")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if self.checkout is None:
            env.pop("PYTHONPATH", None)
        else:
            env["PYTHONPATH"] = str(self.checkout)
        return env


@dataclass(frozen=True)
class Run:
    """One start: wall-clock seconds to the tools/list answer, the server's CPU seconds by then, the tools."""

    seconds: float
    cpu_seconds: float | None
    tools: int


def one_run(server: Server, stderr_path: Path, *python_flags: str) -> Run:
    """Start the server, ask for its tools, stop it."""
    argv, env = server.command(*python_flags), server.env()
    # The working directory comes first on sys.path (python -m): the checkout measured, or none at all.
    cwd = server.checkout or Path(tempfile.gettempdir())
    with stderr_path.open("wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=cwd)
    try:
        assert process.stdin is not None and process.stdout is not None
        reader = _LineReader(process.stdout.fileno(), started + TIMEOUT_S)
        process.stdin.write(_line(_INITIALIZE))
        process.stdin.flush()
        _answer(reader, 1)
        process.stdin.write(_line(_INITIALIZED) + _line(_TOOLS_LIST))
        process.stdin.flush()
        tools = _answer(reader, 2)["result"]["tools"]
        elapsed = time.perf_counter() - started
        cpu = _cpu_seconds(process.pid)
    finally:
        stop_process(process, 10)
    return Run(elapsed, cpu, len(tools))


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a Linux process so far (steadier than wall time on a shared machine)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _line(message: JSONDict) -> bytes:
    return json.dumps(message).encode() + b"\n"


def _answer(reader: _LineReader, request_id: int) -> JSONDict:
    while True:
        message: JSONDict = json.loads(reader.line())
        if message.get("id") == request_id:
            return message


class _LineReader:
    """Lines from a pipe, each read waiting no later than one deadline."""

    def __init__(self, fd: int, deadline: float) -> None:
        self._fd, self._deadline, self._buffer = fd, deadline, b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(fd, selectors.EVENT_READ)

    def line(self) -> bytes:
        while b"\n" not in self._buffer:
            left = self._deadline - time.perf_counter()
            if left <= 0 or not self._selector.select(left):
                raise TimeoutError(f"no answer within {TIMEOUT_S} s")
            chunk = os.read(self._fd, 65536)
            if not chunk:
                raise EOFError("the server closed stdout before answering")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line


def import_offenders(stderr_text: str, top: int) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """From ``-X importtime`` output: the ``top`` modules by own time, and the top-level imports by total time."""
    own: list[tuple[str, int]] = []
    roots: list[tuple[str, int]] = []  # imported by no other module: by the program itself, maybe late
    for match in _IMPORT_LINE.finditer(stderr_text):
        self_us, total_us, indent, name = int(match[1]), int(match[2]), match[3], match[4]
        own.append((name, self_us))
        if not indent:
            roots.append((name, total_us))
    own.sort(key=lambda item: -item[1])
    roots.sort(key=lambda item: -item[1])
    return own[:top], roots[:top]


def summary(runs: list[Run]) -> JSONDict:
    """Median and p90 of the wall-clock seconds (and the CPU seconds, where /proc has them)."""
    seconds = [run.seconds for run in runs]
    cpu = [run.cpu_seconds for run in runs if run.cpu_seconds is not None]
    return {
        "tools": runs[-1].tools,
        "median_s": median(seconds),
        "p90_s": percentile(seconds, 90),
        "cpu_median_s": median(cpu),
        "seconds": [round(t, 4) for t in seconds],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="measured runs (default 7)")
    parser.add_argument("--console-script", action="store_true", help="start the flow-mcp script, not python -m")
    parser.add_argument("--python", default=sys.executable, help="the interpreter (default: this one)")
    parser.add_argument(
        "--installed", action="store_true", help="the flow_mcp installed for --python rather than this checkout"
    )
    parser.add_argument(
        "--against",
        metavar="CHECKOUT",
        default=None,
        help="also measure another checkout (git worktree add DIR COMMIT), run for run in turn with this one",
    )
    parser.add_argument("--floor", action="store_true", help="also the MCP SDK's own server with one tool, in turn")
    parser.add_argument("--importtime", action="store_true", help="also one run under -X importtime: top offenders")
    parser.add_argument("--top", type=int, default=15, help="offenders to list with --importtime (default 15)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)

    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stderr_path = out / "startup-server.stderr"
    servers = [Server(args.python, None if args.installed else ROOT, args.console_script)]
    if args.against:
        servers.append(Server(args.python, Path(args.against).resolve(), args.console_script))
    if args.floor:
        servers.append(Server(args.python, None, code=FLOOR))
    for server in servers:
        one_run(server, stderr_path)  # warm-up: bytecode caches, the page cache
    runs: list[list[Run]] = [[] for _ in servers]
    for _ in range(args.runs):
        for server, taken in zip(servers, runs, strict=True):  # in turn, so both see the same machine load
            taken.append(one_run(server, stderr_path))
    figures: JSONDict = {"commit": git_commit(), "cpus": os.cpu_count(), "runs": args.runs, "servers": []}
    for server, taken in zip(servers, runs, strict=True):
        command = " ".join(server.command()) if server.code is None else f"{server.python} -c FLOOR"
        figures["servers"].append({"name": server.name, "command": command, **summary(taken)})
    if args.importtime:
        one_run(servers[0], stderr_path, "-X", "importtime")
        own, roots = import_offenders(stderr_path.read_text(errors="replace"), args.top)
        figures["importtime_self_ms"] = {name: round(us / 1000, 1) for name, us in own}
        figures["importtime_top_level_ms"] = {name: round(us / 1000, 1) for name, us in roots}
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    for result in figures["servers"]:
        cpu = f"; server CPU median {result['cpu_median_s']:.2f} s" if result["cpu_median_s"] is not None else ""
        print(f"{result['name']}: {result['command']}, FlowHunt unreachable, {args.runs} runs")
        print(f"  start -> tools/list answered ({result['tools']} tools): median {result['median_s']:.3f} s, ", end="")
        print(f"p90 {result['p90_s']:.3f} s{cpu}")
        print("  runs: " + ", ".join(f"{t:.3f}" for t in result["seconds"]))
    if args.importtime:
        print(f"-X importtime of {figures['servers'][0]['name']}, top-level imports by total ms:")
        for name, ms in figures["importtime_top_level_ms"].items():
            print(f"  {ms:8.1f}  {name}")
        print("-X importtime, modules by own ms:")
        for name, ms in figures["importtime_self_ms"].items():
            print(f"  {ms:8.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
