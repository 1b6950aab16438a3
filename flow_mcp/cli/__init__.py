"""The ``flow-mcp`` command. Logging is configured here, and only here."""

from flow_mcp.cli.commands import main

__all__ = ["main"]
