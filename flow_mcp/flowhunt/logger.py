"""The flowhunt layer's logger: the program's own structlog configuration, or stderr when it has none.

structlog unconfigured prints to stdout, which would corrupt any stdio MCP server that uses this package as a
library. A library must not configure logging for its host program either, so each call looks: configured, the
program's setup is used (the flow-mcp command configures it once, in ``cli``); not configured, warnings and worse
go to stderr as JSON lines and the rest is dropped.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_UNCONFIGURED = structlog.wrap_logger(
    structlog.WriteLogger(sys.stderr),
    wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    processors=[
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.JSONRenderer(),
    ],
)


class _Logger:
    def __init__(self) -> None:
        self._configured: Any = None

    def __getattr__(self, level: str) -> Any:
        if not structlog.is_configured():
            return getattr(_UNCONFIGURED, level)
        if self._configured is None:
            self._configured = structlog.get_logger()
        return getattr(self._configured, level)


def get_logger() -> Any:
    """A logger for one module of the flowhunt layer."""
    return _Logger()
