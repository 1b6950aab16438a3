"""Settings and environments that reach a sandbox fast, and the ways tests start a flow-mcp server."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from mcp import StdioServerParameters
from pydantic import SecretStr

from flow_mcp.config import Settings
from flow_mcp.sandbox import SandboxServer

ROOT = Path(__file__).resolve().parents[2]
FAST_PACING = 0.02  # scripted turns run at 2% of real time
# At FAST_PACING no scripted course leaves more than a few milliseconds between an answer and the event after
# it, so a tenth of a second of quiet is plenty to call a turn completed.
SETTLE_SECONDS = 0.1
SECRET_KEY = "fh-live-SECRET-9d8c7b6a5f4e3d2c1b0a"


def settings_for(sandbox: SandboxServer, **overrides: Any) -> Settings:
    """Settings that reach the sandbox, fast to settle and to poll."""
    values: dict[str, Any] = {
        "base_url": sandbox.url,
        "api_key": SecretStr(sandbox.config.api_key),
        "settle_seconds": SETTLE_SECONDS,
        "poll_min_interval": 0.05,
        "poll_thinking_max_interval": 0.3,
        "poll_max_interval": 0.3,
        "poll_rate": 50.0,
        "poll_lateness": 0.02,
        "timeout": 5.0,
        "retry_max_seconds": 10.0,
    }
    values.update(overrides)
    return Settings(**values)


def server_env(sandbox: SandboxServer | None, **extra: str) -> dict[str, str]:
    """Environment for a ``flow-mcp serve`` subprocess: none of the caller's FlowHunt settings leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWHUNT_", "FLOW_MCP_"))}
    env["PYTHONPATH"] = str(ROOT)
    if sandbox is not None:
        env.update(
            FLOWHUNT_BASE_URL=sandbox.url,
            FLOWHUNT_API_KEY=sandbox.config.api_key,
            FLOW_MCP_SETTLE_SECONDS=str(SETTLE_SECONDS),
            FLOW_MCP_POLL_MIN_INTERVAL="0.05",
            FLOW_MCP_POLL_THINKING_MAX_INTERVAL="0.3",
            FLOW_MCP_POLL_MAX_INTERVAL="0.3",
            FLOW_MCP_POLL_RATE="50",
            FLOW_MCP_POLL_LATENESS="0.02",
        )
    env.update(extra)
    return env


def stdio_server(env: dict[str, str], *args: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "flow_mcp", "serve", *args], env=env)


def teed_server(env: dict[str, str], out: Path, err: Path, *args: str) -> StdioServerParameters:
    """A stdio server whose stdout and stderr are also copied, byte for byte, to ``out`` and ``err``."""
    tee = str(ROOT / "tests" / "support" / "tee_server.py")
    return StdioServerParameters(command=sys.executable, args=[tee, str(out), str(err), *args], env=env)


def text_of(result: Any) -> str:
    """The text blocks of a tool result, joined."""
    return "\n".join(getattr(block, "text", "") for block in result.content)
