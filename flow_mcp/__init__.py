"""flow_mcp: an MCP server for FlowHunt's AI Flow Assistant, and a FlowHunt client usable on its own.

``from flow_mcp import FlowHuntClient, Settings`` gives agent toolchains that do not speak MCP the same
client the server uses. The names load on first use, so importing flow_mcp stays light (no MCP SDK).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from flow_mcp.client import FlowHuntClient
    from flow_mcp.config import Settings
    from flow_mcp.errors import (
        APIError,
        AuthError,
        ConfigurationError,
        FlowHuntError,
        FlowMCPError,
        InvalidArgumentError,
        NotFoundError,
        RateLimitError,
        ResponseShapeError,
        ServerError,
        TransportError,
        ValidationError,
    )
    from flow_mcp.models import RawEvent
    from flow_mcp.turns import Cursor

_ERRORS = (
    "APIError",
    "AuthError",
    "ConfigurationError",
    "FlowHuntError",
    "FlowMCPError",
    "InvalidArgumentError",
    "NotFoundError",
    "RateLimitError",
    "ResponseShapeError",
    "ServerError",
    "TransportError",
    "ValidationError",
)
_HOMES = {
    "FlowHuntClient": "flow_mcp.client",
    "Settings": "flow_mcp.config",
    "RawEvent": "flow_mcp.models",
    "Cursor": "flow_mcp.turns",
    **dict.fromkeys(_ERRORS, "flow_mcp.errors"),
}

__all__ = [
    "APIError",
    "AuthError",
    "ConfigurationError",
    "Cursor",
    "FlowHuntClient",
    "FlowHuntError",
    "FlowMCPError",
    "InvalidArgumentError",
    "NotFoundError",
    "RateLimitError",
    "RawEvent",
    "ResponseShapeError",
    "ServerError",
    "Settings",
    "TransportError",
    "ValidationError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'flow_mcp' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
