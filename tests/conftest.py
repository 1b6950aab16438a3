"""Fixtures for every tier: a real sandbox on loopback, settings pointing at it, an MCP client to a real server.

Tiers are folders: unit/ (pure), integration/ (the sandbox on loopback, in-memory MCP clients), e2e/ (real
processes). Everything under e2e/ is marked ``slow``, so ``-m "not slow"`` runs the first two. Runs are spread
over xdist workers (``-n auto`` in pyproject.toml; ``-n 0`` runs in this process, e.g. to debug).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from flow_mcp.config import Settings
from flow_mcp.sandbox import SandboxConfig, SandboxServer
from flow_mcp.server.app import build_server

from .support.faultsuite import FAULT_FIGURES
from .support.redis_server import RedisServer
from .support.servers import FAST_PACING, settings_for

TESTS = Path(__file__).resolve().parent
E2E, UNIT = TESTS / "e2e", TESTS / "unit"
# Measured fastest on the 2-core machines this runs on: the suite mostly waits on sockets, processes and clocks.
WORKERS = 4
SANDBOX = SandboxConfig(pacing=FAST_PACING, seed=7)  # the knobs every test's sandbox starts with


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """What ``-n auto`` means here: four workers, or none when only unit tests are asked for (they take seconds)."""
    asked = [(config.invocation_params.dir / str(arg).split("::")[0]).resolve() for arg in config.args]
    return 0 if asked and all(path == UNIT or UNIT in path.parents for path in asked) else WORKERS


@pytest.hookimpl(tryfirst=True)  # before -m "not slow" deselects by the mark
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under e2e/ as slow."""
    for item in items:
        if E2E in item.path.parents:
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Show the fault-injection figures at the end of the run, where people look (from any xdist worker)."""
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        for name, figures in getattr(report, "user_properties", ()):
            if name == FAULT_FIGURES:
                terminalreporter.section(FAULT_FIGURES)
                for key, value in figures.items():
                    terminalreporter.write_line(f"{key}: {value}")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def shared_sandbox() -> Iterator[SandboxServer]:
    """One sandbox per test process; ``sandbox`` hands it to each test as good as new."""
    with SandboxServer(dataclasses.replace(SANDBOX)) as server:
        yield server


@pytest.fixture
def sandbox(shared_sandbox: SandboxServer) -> SandboxServer:
    """The shared sandbox, reset: the starting knobs, no sessions, empty request and fault logs, dice re-seeded.

    Tests may turn knobs and read the logs as they please. A test that stops the sandbox, or stalls a request
    that would change its state after the test (a stalled create lands a session in a later test), takes
    ``fresh_sandbox`` instead.
    """
    shared_sandbox.state.update_config(dataclasses.asdict(SANDBOX))
    shared_sandbox.state.reset(sessions=True)
    return shared_sandbox


@pytest.fixture
def fresh_sandbox() -> Iterator[SandboxServer]:
    """A sandbox of the test's own, with the same starting knobs as ``sandbox``."""
    with SandboxServer(dataclasses.replace(SANDBOX)) as server:
        yield server


@pytest.fixture
def settings(sandbox: SandboxServer) -> Settings:
    return settings_for(sandbox)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    """An MCP client connected in memory to a server built from ``settings``."""
    async with Client(build_server(settings)) as connected:
        yield connected


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of the test's own on a free loopback port (skipped outside CI where there is none)."""
    with RedisServer() as server:
        yield server
