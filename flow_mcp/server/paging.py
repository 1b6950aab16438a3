"""A result's size: every tool result and resource stays within FLOW_MCP_MAX_RESULT_BYTES.

Events are paged (a page ends where the next begins, so following the cursor loses nothing), and what still does
not fit has its longest strings cut, with a marker saying how much, so a result's shape (and schema) holds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from flow_mcp.flowhunt.digest import truncate
from flow_mcp.flowhunt.events import Event

RESERVED_BYTES = 48 * 1024
"""Room kept in a result for everything but its events: status, cursor (twice), hints."""


def json_size(value: Any) -> int:
    """At most the bytes ``value`` takes as JSON on the wire (ASCII escapes are never shorter than UTF-8)."""
    return len(json.dumps(value, ensure_ascii=True, separators=(",", ":"), default=str))


def fit(value: Any, room: int) -> Any:
    """``value`` with its longest strings cut, each with a marker saying how much, until its JSON fits ``room``.

    Keys and list items all stay, so the shape (and a result's schema) holds; the caller checks what is left.
    """
    if json_size(value) <= room:
        return value
    low, high = 0, _longest_string(value)
    while low < high:  # the longest cap at which everything fits
        cap = (low + high + 1) // 2
        if json_size(_cut_strings(value, cap)) <= room:
            low = cap
        else:
            high = cap - 1
    return _cut_strings(value, low)


def page(events: Sequence[Event], room: int) -> tuple[list[Event], bool]:
    """The leading events whose share of a result fits ``room`` bytes, and whether any were left out.

    An event too big on its own comes alone with its fields cut, so a page is never empty and following the
    cursor always gets on.
    """
    kept: list[Event] = []
    used = 0
    for event in events:
        cost = _cost(event)
        if used + cost > room:
            if not kept:
                kept.append(_fit_event(event, room))
            return kept, len(kept) < len(events)
        kept.append(event)
        used += cost
    return kept, False


def is_answer_event(event: Event) -> bool:
    return event.type == "message" and event.role == "ai"


def _cost(event: Event) -> int:
    # An answer's text comes twice more: as the result's `answer` and first in its text.
    answer = 2 * json_size(event.text) if is_answer_event(event) else 0
    return json_size(event.model_dump(mode="json")) + len(event.summary) + answer + 8


def _fit_event(event: Event, room: int) -> Event:
    data = fit(event.model_dump(mode="json"), room // 3)
    if json_size(data) > room // 3:  # too many keys or items to cut strings alone: keep the fields, drop metadata
        size = json_size(event.metadata)
        data["metadata"] = f"[cut by flow_mcp: {size} bytes of metadata, too big for one result]"
        data = fit(data, room // 3)
    return Event.model_validate(data)


def _longest_string(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return max((_longest_string(item) for item in items), default=0)


def _cut_strings(value: Any, cap: int) -> Any:
    if isinstance(value, str):
        return truncate(value, cap)
    if isinstance(value, list):
        return [_cut_strings(item, cap) for item in value]
    if isinstance(value, dict):
        return {key: _cut_strings(item, cap) for key, item in value.items()}
    return value
