"""The FlowHunt wire: reading a body (``read_json``) and the models of what it holds (tolerant, raw).

``read_json`` is where every string from FlowHunt is made safe, once, for everything downstream. Wire models
validate only what flow_mcp relies on; every other field, unknown ``action_type`` or ``event_type`` value and
any ``metadata`` shape passes through untouched, because FlowHunt adds new ones between releases.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

AI_MODELS = ("Claude Sonnet 4.6", "GPT4.1", "O4 Mini", "O3 Mini")
"""The ``ai_model`` values FlowHunt's invoke accepts."""

UNREADABLE = object()
"""What ``read_json`` returns for a body that is not JSON."""

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # after json.loads, any surrogate left is unpaired
MAX_TIMESTAMP = 10**16
"""Event timestamps are below this (epoch ms; year 318857)."""
_MAX_STAMP_DIGITS = 16


def read_json(data: bytes, scrub: Callable[[str], str], skip: Callable[[Any], bool] | None = None) -> Any:
    """A FlowHunt body as JSON with every string made safe to hold, log and write out; unreadable: a marker.

    Invalid UTF-8 and lone surrogates (``"\\ud800"`` escapes) become U+FFFD, ``scrub`` blanks secrets in every
    string and key, and an integer too long for Python's int-str limit becomes infinity, as ``1e400`` does: each
    degrades one field, never the whole answer. None for an empty body. With ``skip``, the items of a top-level list
    it picks are left out before any string is cleaned: a poll's events delivered before, which nothing reads again.
    """
    if not data:
        return None
    text = data.decode(json.detect_encoding(data), "replace")
    try:
        value = json.loads(text, parse_int=_integer)
    except ValueError:
        return UNREADABLE
    except RecursionError:  # JSON nested beyond reason: in a list, only the items that are so deep are lost
        value = _items_one_by_one(text)
    if skip is not None and isinstance(value, list):
        value = [item for item in value if not skip(item)]
    return _clean_strings(value, lambda s: scrub(s if s.isascii() else _LONE_SURROGATE.sub("\ufffd", s)))


def event_identity(item: Any) -> tuple[str, int] | None:
    """The event id and timestamp ``RawEvent`` would read from a raw item, when both are plainly there; else None.

    For dropping an event delivered before without validating it again (each poll looks back and brings such events
    many times). Only the plain shapes are read here, and None means "validate it": a doubt never drops an event.
    """
    if not isinstance(item, dict):
        return None
    event_id, stamp = item.get("event_id"), item.get("created_at_timestamp")
    if isinstance(event_id, int) and not isinstance(event_id, bool):
        event_id = str(event_id)
    if not isinstance(event_id, str) or not event_id:
        return None
    if isinstance(stamp, str) and 0 < len(stamp) <= _MAX_STAMP_DIGITS and stamp.isascii() and stamp.isdigit():
        stamp = int(stamp)
    if not isinstance(stamp, int) or isinstance(stamp, bool) or not 0 <= stamp < MAX_TIMESTAMP:
        return None
    return event_id, stamp


# A JSON string (escapes included) or one structural character: all the scanner needs to find an array's items.
_STRING_OR_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]', re.DOTALL)


def _items_one_by_one(text: str) -> Any:
    """A top-level array parsed item by item, each item too deep to parse replaced by ``UNREADABLE``.

    Only for a body whose nesting broke ``json.loads``: one event with absurd metadata must not make the whole
    poll unreadable (and with it every later poll of the session). Anything but an array stays unreadable.
    """
    body = text.strip()
    if not body.startswith("[") or not body.endswith("]"):
        return UNREADABLE
    items: list[Any] = []
    depth, start = 0, 1
    for match in _STRING_OR_STRUCTURE.finditer(body, 1, len(body) - 1):
        mark = match.group()
        if mark in ("[", "{"):
            depth += 1
        elif mark in ("]", "}"):
            depth -= 1
        elif mark == "," and depth == 0:
            items.append(_item(body[start : match.start()]))
            start = match.end()
    last = body[start:-1]
    if items or last.strip():
        items.append(_item(last))
    return items


def _item(text: str) -> Any:
    try:
        return json.loads(text, parse_int=_integer)
    except (ValueError, RecursionError):
        return UNREADABLE


def _integer(digits: str) -> int | float:
    try:
        return int(digits)
    except ValueError:  # past sys.get_int_max_str_digits(): a float, which is then +-inf
        return float(digits)


def _clean_strings(value: Any, clean: Callable[[str], str]) -> Any:
    """``value`` with ``clean`` applied to every string and key; lists and dicts are changed in place."""
    if isinstance(value, str):
        return clean(value)
    pending = [value]  # no recursion: json.loads can nest deeper than the interpreter's stack
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            for index, item in enumerate(node):
                if isinstance(item, str):
                    node[index] = clean(item)
                elif isinstance(item, list | dict):
                    pending.append(item)
        elif isinstance(node, dict):
            items = [(clean(key), clean(item) if isinstance(item, str) else item) for key, item in node.items()]
            node.clear()
            node.update(items)
            pending.extend(item for _, item in items if isinstance(item, list | dict))
    return value


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class SessionCreated(_Wire):
    """Body of ``POST /v3/flow-assistants/create``."""

    session_id: str = Field(min_length=1)
    created_at: str = ""

    @field_validator("created_at", mode="before")
    @classmethod
    def _any_to_str(cls, value: Any) -> str:
        return "" if value is None else str(value)


class RawEvent(_Wire):
    """One FlowSessionEvent as FlowHunt sends it. Only the id and timestamp are required."""

    event_id: str = Field(min_length=1)
    # Bounded so a junk value cannot push the cursor past every real event (10**16 ms is year 318857).
    created_at_timestamp: int = Field(ge=0, lt=MAX_TIMESTAMP)
    event_type: str = ""
    action_type: str = ""
    credits: float = 0.0
    metadata: Any = None
    component_name: str | None = None
    run_id: str | None = None
    session_id: str | None = None

    @field_validator("event_id", mode="before")
    @classmethod
    def _id_to_str(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("created_at_timestamp", mode="before")
    @classmethod
    def _epoch_ms(cls, value: Any) -> Any:
        # FlowHunt sends epoch milliseconds as a string of digits.
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        return value

    @field_validator("event_type", "action_type", mode="before")
    @classmethod
    def _label(cls, value: Any) -> str:
        return value if isinstance(value, str) else ""

    @field_validator("credits", mode="before")
    @classmethod
    def _number(cls, value: Any) -> float:
        if isinstance(value, bool):
            return 0.0
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            return 0.0
        return number if number == number and abs(number) != float("inf") else 0.0

    @field_validator("component_name", "run_id", "session_id", mode="before")
    @classmethod
    def _optional_str(cls, value: Any) -> str | None:
        return value if isinstance(value, str) else None

    @field_validator("metadata", mode="after")
    @classmethod
    def _bounded_depth(cls, value: Any) -> Any:
        return _limit_depth(value, _MAX_METADATA_DEPTH)

    @property
    def meta(self) -> dict[str, Any]:
        """The metadata when it is an object, else an empty dict (never raises)."""
        return self.metadata if isinstance(self.metadata, dict) else {}


_MAX_METADATA_DEPTH = 64  # far beyond any real metadata; deeper JSON cannot even be serialized back out
_TOO_DEEP = "[nested too deep]"


def _limit_depth(value: Any, depth: int) -> Any:
    """``value`` with anything nested deeper than ``depth`` replaced by a marker."""
    if not isinstance(value, dict | list):
        return value
    if depth <= 0:
        return _TOO_DEEP
    if isinstance(value, dict):
        return {key: _limit_depth(item, depth - 1) for key, item in value.items()}
    return [_limit_depth(item, depth - 1) for item in value]


class Invocation(_Wire):
    """Body of ``POST /v3/flow-assistants/{session_id}/invoke``."""

    message_id: str = ""
    created_at: str = Field(pattern=r"^\d{1,20}$")
    cached_events: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("message_id", "created_at", mode="before")
    @classmethod
    def _any_to_str(cls, value: Any) -> Any:
        # A number past Python's int-str limit arrives as a float (infinity): as text it degrades, not fails.
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    @field_validator("cached_events", mode="before")
    @classmethod
    def _list_or_empty(cls, value: Any) -> Any:
        return [] if value is None else value


# -- published flows (V2) -------------------------------------------------------------------------


def _text_or_empty(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


class FlowSummary(_Wire):
    """One item of ``POST /v2/flows/`` (FlowHunt's FlowResponse). Only the id is required."""

    id: str = Field(min_length=1)
    name: str = ""
    description: str = ""

    @field_validator("id", mode="before")
    @classmethod
    def _id_to_str(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("name", "description", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        return _text_or_empty(value)


class FlowDetail(FlowSummary):
    """Body of ``GET /v2/flows/{flow_id}`` (FlowDetailResponse): the summary plus the texts a person sees."""

    detailed_description: str | None = None
    try_flow_input_placeholder: str | None = None

    @field_validator("detailed_description", "try_flow_input_placeholder", mode="before")
    @classmethod
    def _optional_text(cls, value: Any) -> str | None:
        return _text_or_none(value)


class Attachment(_Wire):
    """Body of ``POST /v2/flows/sessions/{session_id}/attachments``."""

    file_name: str = ""
    file_type: str = ""
    file_id: str = ""

    @field_validator("file_name", "file_type", "file_id", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        return _text_or_empty(value)


class HookAnswer(_Wire):
    """Body of ``POST /v2/flows/sessions/{session_id}/resume-hook``: ``resumed``, or why the hook was not."""

    status: str = Field(min_length=1)
    failed: list[str] = Field(default_factory=list)

    @field_validator("failed", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> list[str]:
        return [str(item) for item in value] if isinstance(value, list) else []
