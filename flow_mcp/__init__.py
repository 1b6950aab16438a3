"""flow_mcp: an MCP server for FlowHunt's AI Flow Assistant, and a FlowHunt client usable on its own.

Agent toolchains that do not speak MCP get what the server uses: ``FlowHuntClient`` (typed calls, retries, one
request budget per key), ``send_message`` (a message sent exactly once) and ``follow`` (the adaptive polling
loop that hands out every event exactly once). Importing flow_mcp loads no MCP SDK.
"""

from flow_mcp._version import __version__
from flow_mcp.config import Settings
from flow_mcp.errors import (
    APIError,
    AuthError,
    ConfigurationError,
    FlowHuntError,
    FlowMCPError,
    InvalidArgumentError,
    MissingKeyError,
    NotDeliveredError,
    NotFoundError,
    OutOfCreditsError,
    RateLimitError,
    ResponseShapeError,
    ResponseTooLargeError,
    ServerError,
    TransportError,
    TurnInProgressError,
    ValidationError,
)
from flow_mcp.flowhunt.client import FlowHuntClient
from flow_mcp.flowhunt.cursor import Cursor, decode_cursor
from flow_mcp.flowhunt.events import Event, normalize, summarize
from flow_mcp.flowhunt.follow import follow
from flow_mcp.flowhunt.send import Sent, send_message
from flow_mcp.flowhunt.turn import TurnProgress, TurnStatus
from flow_mcp.flowhunt.wire import RawEvent

__all__ = [
    "APIError",
    "AuthError",
    "ConfigurationError",
    "Cursor",
    "Event",
    "FlowHuntClient",
    "FlowHuntError",
    "FlowMCPError",
    "InvalidArgumentError",
    "MissingKeyError",
    "NotDeliveredError",
    "NotFoundError",
    "OutOfCreditsError",
    "RateLimitError",
    "RawEvent",
    "ResponseShapeError",
    "ResponseTooLargeError",
    "Sent",
    "ServerError",
    "Settings",
    "TransportError",
    "TurnInProgressError",
    "TurnProgress",
    "TurnStatus",
    "ValidationError",
    "__version__",
    "decode_cursor",
    "follow",
    "normalize",
    "send_message",
    "summarize",
]
