"""logs.py: secrets never reach a log line, and logging writes to stderr only, never to stdout (the MCP channel)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import structlog

from flow_mcp.cli.logs import REDACTED, SecretRedactor, configure_logging

SECRET = "fh-live-SECRET-0123456789"


def redact(secrets: tuple[str, ...] = (SECRET,), **event: Any) -> dict[str, Any]:
    return SecretRedactor(secrets)(None, "info", event)


@pytest.mark.parametrize("key", ["api_key", "API-KEY", "token", "x_secret", "password", "Authorization", "cookie"])
def test_a_value_under_a_secret_looking_key_is_redacted(key: str) -> None:
    assert redact(**{key: "anything at all"}) == {key: REDACTED}


@pytest.mark.parametrize("empty", [None, "", False])
def test_an_empty_secret_looking_value_is_left_to_say_it_is_unset(empty: object) -> None:
    assert redact(api_key=empty) == {"api_key": empty}


def test_known_secrets_and_bearer_tokens_are_scrubbed_from_text_at_any_depth() -> None:
    event = redact(
        event="request failed",
        detail=f"FlowHunt said: bad key {SECRET}",
        headers={"nested": [f"x {SECRET} y", ("Bearer abc.def-123", 7)]},
        count=3,
    )
    assert event == {
        "event": "request failed",
        "detail": f"FlowHunt said: bad key {REDACTED}",
        "headers": {"nested": [f"x {REDACTED} y", [f"Bearer {REDACTED}", 7]]},
        "count": 3,
    }


def test_the_longest_secret_is_scrubbed_first_and_very_short_ones_not_at_all() -> None:
    redactor = SecretRedactor(["abcd", "abcdef", "xyz", ""])
    assert redactor.scrub("abcdef abcd xyz") == f"{REDACTED} {REDACTED} xyz"


@contextmanager
def logging_configured(**options: Any) -> Iterator[None]:
    """configure_logging for the block; then structlog and the standard library's loggers as they were."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("httpx2", "httpcore", "mcp", "uvicorn", "sse_starlette")}
    was_configured, config = structlog.is_configured(), structlog.get_config()
    try:
        configure_logging(**options)
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, saved in levels.items():
            logging.getLogger(name).setLevel(saved)
        if was_configured:
            structlog.configure(**config)
        else:
            structlog.reset_defaults()


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_every_log_line_goes_to_stderr_redacted_and_nothing_to_stdout(
    capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    with logging_configured(level="debug", fmt=fmt, secrets=[SECRET]):
        structlog.get_logger().info("tool_called", detail=f"key {SECRET}", api_key=SECRET)
        logging.getLogger("mcp.server").warning("library line with %s", SECRET)
        logging.getLogger("flow_mcp.sandbox").info("sandbox line")
        logging.getLogger("httpx2").info("routine request line")  # libraries' routine lines stay out
    out, err = capsys.readouterr()
    assert out == ""
    assert "tool_called" in err and "library line" in err and "sandbox line" in err
    assert "routine request line" not in err and SECRET not in err
    if fmt == "json":
        assert all(json.loads(line)["event"] for line in err.splitlines())


def test_lines_below_the_level_are_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    with logging_configured(level="warning"):
        structlog.get_logger().info("chatty")
        structlog.get_logger().warning("worth_saying")
    out, err = capsys.readouterr()
    assert out == "" and "worth_saying" in err and "chatty" not in err
