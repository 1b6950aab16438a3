"""Checks of tool arguments that give the caller an actionable message instead of a schema error."""

from __future__ import annotations

import math

from flow_mcp.errors import InvalidArgumentError
from flow_mcp.models import AI_MODELS

MAX_MESSAGE_BYTES = 64 * 1024


def check_message(message: str) -> str:
    """A message FlowHunt can take: not blank, at most 64 KiB of UTF-8."""
    if not message.strip():
        raise InvalidArgumentError("message is empty: write what you want the Flow Assistant to do.")
    try:
        size = len(message.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgumentError("message contains invalid Unicode (lone surrogates): send plain text.") from None
    if size > MAX_MESSAGE_BYTES:
        raise InvalidArgumentError(
            f"message is {size} bytes; the limit is {MAX_MESSAGE_BYTES} (64 KiB). Shorten it or split it over turns."
        )
    return message


def check_ai_model(ai_model: str | None) -> str | None:
    """One of FlowHunt's model names (matched ignoring case and spacing), or None for the default."""
    if ai_model is None:
        return None
    wanted = _squash(ai_model)
    for name in AI_MODELS:
        if _squash(name) == wanted:
            return name
    choices = ", ".join(f"'{name}'" for name in AI_MODELS)
    raise InvalidArgumentError(f"Unknown ai_model. Use one of {choices}, or omit it for FlowHunt's default.")


def check_seconds(name: str, value: float, *, low: float, high: float) -> float:
    """A finite number of seconds within [low, high]."""
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidArgumentError(f"{name} must be a number of seconds from {low:g} to {high:g}.")
    return float(value)


def _squash(text: str) -> str:
    return "".join(text.split()).lower()
