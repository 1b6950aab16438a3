"""configure_logging(): structlog JSON lines on stderr, with secrets redacted. Called once, by the CLI.

Stdout is the MCP protocol on stdio, so nothing here ever writes there; the standard library's
loggers (the MCP SDK's, uvicorn's, the sandbox's) are routed through the same processors to stderr.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from functools import lru_cache
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from flow_mcp.redaction import REDACTED, Redactor

_SECRET_KEYS = re.compile(r"(api[_-]?key|token|secret|password|authorization|cookie)", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)[^\s\"',]+", re.IGNORECASE)


class SecretRedactor:
    """A processor that blanks known secrets (plain or URL-encoded), values of secret-looking keys and bearer tokens.

    It sees each value whole, before any renderer cuts it, so a secret is never half recognised.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._redactor = Redactor(secrets)

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        return {key: self._clean(key, value) for key, value in event_dict.items()}

    def _clean(self, key: str, value: Any) -> Any:
        # A secret is text: a flag such as api_key_set=True says nothing and stays readable.
        if _is_secret_key(key) and value not in (None, "") and not isinstance(value, bool):
            return REDACTED
        if isinstance(value, str):
            return self.scrub(value)
        if value is None or isinstance(value, int | float):  # the commonest values after text, settled at once
            return value
        if isinstance(value, MutableMapping):
            return {k: self._clean(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean("", v) for v in value]
        return value

    def scrub(self, text: str) -> str:
        text = self._redactor.scrub(text)
        # Searching first: most lines hold no bearer token, and a search that finds none costs less than a sub.
        return _BEARER.sub(_blank_token, text) if _BEARER.search(text) else text


@lru_cache(maxsize=1024)  # a program logs under a few dozen keys: each is looked at once
def _is_secret_key(key: str) -> bool:
    return _SECRET_KEYS.search(key) is not None


def _blank_token(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED


def configure_logging(
    level: str = "info", fmt: str = "json", *, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """Send every log line, ours and the libraries', to stderr as JSON (or console text)."""
    stream = stream or sys.stderr
    numeric = logging.getLevelNamesMapping()[level.upper()]
    redact = SecretRedactor(secrets)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[*shared, renderer],
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    # force: replace any handler a library installed (some default to stdout).
    logging.basicConfig(handlers=[handler], level=numeric, force=True)
    # Libraries' routine lines (one per HTTP request or MCP message) would drown ours: warnings and up only.
    for noisy in ("httpx2", "httpcore", "mcp", "uvicorn", "sse_starlette"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
