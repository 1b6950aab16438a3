"""The shipped examples/ as data: the JSON host configs and the `claude mcp add` lines."""

from __future__ import annotations

import json
from typing import Any

from .servers import ROOT

EXAMPLES = ROOT / "examples"
CONFIGS = {path.name: json.loads(path.read_text("utf-8")) for path in sorted(EXAMPLES.glob("*.json"))}
CLAUDE_CODE_LINES = [
    line for line in (EXAMPLES / "claude_code.sh").read_text("utf-8").splitlines() if line.startswith("claude")
]


def servers_of(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The server entries of a host config (``mcpServers``, or VS Code's ``servers``)."""
    servers = config.get("mcpServers", config.get("servers"))
    assert isinstance(servers, dict) and servers
    return servers
