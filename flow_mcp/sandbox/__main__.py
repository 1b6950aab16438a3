"""`python -m flow_mcp.sandbox [--host H] [--port N]`: serve the simulator; the URL goes to stderr."""

from __future__ import annotations

import argparse
import logging
import sys

from flow_mcp.sandbox.config import SandboxConfig
from flow_mcp.sandbox.runner import run_sandbox


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m flow_mcp.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    run_sandbox(args.host, args.port, SandboxConfig.from_env(), on_ready=_announce)


def _announce(url: str) -> None:
    sys.stderr.write(f"FlowHunt sandbox listening on {url}\n")
    sys.stderr.flush()


if __name__ == "__main__":
    main()
