"""Claiming fd 1 for the stdio server (server/stdout.py), in a process of its own: stray output stays off the wire."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the SDK's own writer serves stdout on Windows")

CLAIMING = textwrap.dedent(
    """
    import os, sys, anyio
    from flow_mcp.server.stdout import claimed_stdout

    async def main():
        with claimed_stdout() as out:
            print("stray print", flush=True)
            os.write(1, b"stray write\\n")
            if out is None:
                sys.stderr.write("not claimed\\n")
            else:
                await out.write('{"jsonrpc": "2.0"}\\n')
                await out.flush()
        print("after", os.get_blocking(1), flush=True)

    anyio.run(main)
    """
)


def test_while_claimed_stray_output_goes_to_stderr_and_the_pipe_is_left_as_it_was() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CLAIMING], capture_output=True, timeout=60, check=True, env=_env_with_repo()
    )
    assert done.stdout.decode() == '{"jsonrpc": "2.0"}\nafter True\n'
    assert "stray print" in done.stderr.decode() and "stray write" in done.stderr.decode()


def test_stdout_that_is_a_file_keeps_the_sdk_writer(tmp_path: Path) -> None:
    out = tmp_path / "stdout"
    with out.open("wb") as sink:
        done = subprocess.run(
            [sys.executable, "-c", CLAIMING],
            stdout=sink,
            stderr=subprocess.PIPE,
            timeout=60,
            check=True,
            env=_env_with_repo(),
        )
    assert "not claimed" in done.stderr.decode()
    assert out.read_text().endswith("after True\n")


def _env_with_repo() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


SHARED = textwrap.dedent(
    """
    import os, socket, sys
    from flow_mcp.server.stdout import claimed_stdout

    ours, theirs = socket.socketpair()
    os.dup2(ours.fileno(), 0)
    os.dup2(ours.fileno(), 1)
    with claimed_stdout() as out:
        sys.stderr.write(f"claimed={out is not None} stdin_blocking={os.get_blocking(0)}\\n")
    """
)


def test_stdout_on_the_same_socket_as_stdin_is_left_to_the_sdks_writer_and_stdin_stays_blocking() -> None:
    # inetd, systemd's Accept=yes and socat hand a server one socket as both: O_NONBLOCK on one would be on both.
    done = subprocess.run(
        [sys.executable, "-c", SHARED], capture_output=True, timeout=60, check=True, env=_env_with_repo()
    )
    assert done.stderr.decode().strip().endswith("claimed=False stdin_blocking=True")
