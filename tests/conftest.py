"""Shared fixtures: a real sandbox on loopback, settings pointing at it, an MCP client to a real server."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from pydantic import SecretStr

from flow_mcp.config import Settings
from flow_mcp.sandbox import SandboxConfig, SandboxServer
from flow_mcp.server.app import build_server

ROOT = Path(__file__).resolve().parent.parent
FAULT_FIGURES = pytest.StashKey[list[dict[str, Any]]]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Show the fault-injection figures at the end of the run, where people look."""
    for figures in config.stash.get(FAULT_FIGURES, []):
        terminalreporter.section("fault injection")
        for name, value in figures.items():
            terminalreporter.write_line(f"{name}: {value}")


FAST_PACING = 0.02  # scripted turns run at 2% of real time


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(pacing=FAST_PACING, seed=7)) as server:
        yield server


def settings_for(sandbox: SandboxServer, **overrides: Any) -> Settings:
    """Settings that reach the sandbox, fast to settle and to poll."""
    values: dict[str, Any] = {
        "base_url": sandbox.url,
        "api_key": SecretStr(sandbox.config.api_key),
        "settle_seconds": 0.3,
        "poll_min_interval": 0.05,
        "poll_thinking_max_interval": 0.3,
        "poll_max_interval": 0.3,
        "timeout": 5.0,
        "retry_max_seconds": 10.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(sandbox: SandboxServer) -> Settings:
    return settings_for(sandbox)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    """An MCP client connected in memory to a server built from ``settings``."""
    async with Client(build_server(settings)) as connected:
        yield connected


def server_env(sandbox: SandboxServer | None, **extra: str) -> dict[str, str]:
    """Environment for a ``flow-mcp serve`` subprocess: none of the caller's FlowHunt settings leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWHUNT_", "FLOW_MCP_"))}
    env["PYTHONPATH"] = str(ROOT)
    if sandbox is not None:
        env.update(
            FLOWHUNT_BASE_URL=sandbox.url,
            FLOWHUNT_API_KEY=sandbox.config.api_key,
            FLOW_MCP_SETTLE_SECONDS="0.3",
            FLOW_MCP_POLL_MIN_INTERVAL="0.05",
            FLOW_MCP_POLL_THINKING_MAX_INTERVAL="0.3",
            FLOW_MCP_POLL_MAX_INTERVAL="0.3",
        )
    env.update(extra)
    return env


def stdio_server(env: dict[str, str], *args: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "flow_mcp", "serve", *args], env=env)
