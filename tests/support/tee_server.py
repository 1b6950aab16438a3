"""Run ``flow-mcp serve`` and keep a byte-exact copy of what it writes to stdout and stderr.

Usage: python tests/support/tee_server.py STDOUT_COPY STDERR_FILE [serve args...]
The MCP client talks to this process as if it were the server; stdin is passed straight through.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading


def main() -> int:
    stdout_copy, stderr_file, *serve_args = sys.argv[1:]
    with open(stderr_file, "wb") as errors:
        server = subprocess.Popen(
            [sys.executable, "-m", "flow_mcp", "serve", *serve_args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        assert server.stdin is not None and server.stdout is not None

        def forward_stdin() -> None:
            try:
                while chunk := sys.stdin.buffer.read1(65536):
                    server.stdin.write(chunk)  # type: ignore[union-attr]
                    server.stdin.flush()  # type: ignore[union-attr]
            except (BrokenPipeError, ValueError, OSError):
                pass
            finally:
                with contextlib.suppress(OSError):
                    server.stdin.close()  # type: ignore[union-attr]

        threading.Thread(target=forward_stdin, daemon=True).start()
        with open(stdout_copy, "wb") as copy:
            while chunk := server.stdout.read1(65536):
                copy.write(chunk)
                copy.flush()
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
        return server.wait()


if __name__ == "__main__":
    sys.exit(main())
