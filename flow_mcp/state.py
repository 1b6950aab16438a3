"""AppState: what the MCP server holds for its lifetime, shared by every tool call."""

from __future__ import annotations

from dataclasses import dataclass, field

from flow_mcp.access import Access
from flow_mcp.config import Settings
from flow_mcp.drain import Drain
from flow_mcp.turnbook import TurnBook


@dataclass
class AppState:
    """What the server holds for its lifetime: settings, the FlowHunt clients, the turns ask follows."""

    settings: Settings
    access: Access
    turns: TurnBook = field(default_factory=TurnBook)
    drain: Drain = field(default_factory=Drain)
