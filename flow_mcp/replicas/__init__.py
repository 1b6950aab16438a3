"""What replicas of one server share, behind one small interface: ``Coordination``.

Four things decide how N replicas on one FlowHunt key behave together: the key's request budget and a 429's pause
(``bucket``), the one-turn-per-session rule (``hold``, ``left_running``/``leave``), and cancellation (``cancel``,
``on_cancel``). ``InProcess`` (local.py) keeps them in this process, as a single server always did; with
FLOW_MCP_REDIS_URL, ``RedisCoordination`` (shared.py, the only module that imports ``redis``) keeps them in Redis,
keyed by the FlowHunt key's fingerprint, and falls back to its own ``InProcess`` while Redis is away.
"""

from __future__ import annotations

import importlib.util

from flow_mcp.config import Settings
from flow_mcp.errors import ConfigurationError
from flow_mcp.replicas.local import Coordination, Held, InProcess, Lease, Position

__all__ = ["Coordination", "Held", "InProcess", "Lease", "Position", "coordination", "redis_missing"]

REDIS_MISSING = (
    'FLOW_MCP_REDIS_URL is set, but the Redis client is not installed: pip install "flow-mcp[redis]" '
    "(or unset FLOW_MCP_REDIS_URL to keep every replica's state in its own process)"
)


def redis_missing(settings: Settings) -> str | None:
    """What to tell the user when FLOW_MCP_REDIS_URL is set but the ``redis`` package is not there, else None."""
    if settings.redis_url is None:
        return None
    try:
        found = importlib.util.find_spec("redis") is not None
    except (ImportError, ValueError):  # a broken or blocked install
        found = False
    return None if found else REDIS_MISSING


def coordination(settings: Settings) -> Coordination:
    """The replicas' shared state (not started: enter it with ``async with``): through Redis when
    FLOW_MCP_REDIS_URL is set, else in this process."""
    if settings.redis_url is None:
        return InProcess()
    missing = redis_missing(settings)
    if missing is not None:
        raise ConfigurationError(missing)
    from flow_mcp.replicas.shared import RedisCoordination  # the redis package loads only when it is used

    return RedisCoordination(settings)
