"""Request validation that answers exactly like FastAPI/pydantic v2 does on the real server (422 bodies)."""

from __future__ import annotations

import json
from dataclasses import dataclass

JSONDict = dict[str, object]

AI_MODELS = ("Claude Sonnet 4.6", "GPT4.1", "O4 Mini", "O3 Mini")
_AI_MODELS_TEXT = "'Claude Sonnet 4.6', 'GPT4.1', 'O4 Mini' or 'O3 Mini'"
# pydantic's lax mode accepts these for a bool field, so the real server does too.
_BOOL_TEXT = {"true": True, "1": True, "yes": True, "on": True, "t": True, "y": True,
              "false": False, "0": False, "no": False, "off": False, "f": False, "n": False}  # fmt: skip


class _Absent:
    """Marks a body that was not sent at all (distinct from a JSON `null`)."""


ABSENT = _Absent()


@dataclass(frozen=True)
class Body:
    """A parsed request body, or the 422 error list explaining why it could not be parsed."""

    value: object
    errors: list[JSONDict]


def parse_json_body(raw: bytes) -> Body:
    """Parse a JSON body; an empty body is ABSENT, undecodable bytes give FastAPI's `json_invalid` error."""
    if not raw.strip():
        return Body(ABSENT, [])
    try:
        return Body(json.loads(raw), [])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        position = exc.pos if isinstance(exc, json.JSONDecodeError) else exc.start
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "invalid UTF-8"
        error: JSONDict = {
            "type": "json_invalid",
            "loc": ["body", position],
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": reason},
        }
        return Body(ABSENT, [error])


def missing(loc: list[object], input_value: object) -> JSONDict:
    """pydantic's `missing` error."""
    return {"type": "missing", "loc": loc, "msg": "Field required", "input": input_value}


def not_an_object(value: object) -> JSONDict:
    """What FastAPI says when a model body is not a JSON object."""
    return {
        "type": "model_attributes_type",
        "loc": ["body"],
        "msg": "Input should be a valid dictionary or object to extract fields from",
        "input": value,
    }


def check_string(loc: list[object], value: object, nullable: bool) -> JSONDict | None:
    """None when `value` fits a `str` (or `str | None`) field, else the `string_type` error."""
    if isinstance(value, str) or (nullable and value is None):
        return None
    return {"type": "string_type", "loc": loc, "msg": "Input should be a valid string", "input": value}


def check_bool(loc: list[object], value: object) -> tuple[bool, JSONDict | None]:
    """Coerce a bool field the way pydantic's lax mode does."""
    if isinstance(value, bool):
        return value, None
    if isinstance(value, int) and value in (0, 1):
        return bool(value), None
    if isinstance(value, str) and value.lower() in _BOOL_TEXT:
        return _BOOL_TEXT[value.lower()], None
    error: JSONDict = {"type": "bool_type", "loc": loc, "msg": "Input should be a valid boolean", "input": value}
    if isinstance(value, str):
        error.update(type="bool_parsing", msg="Input should be a valid boolean, unable to interpret input")
    return False, error


def check_ai_model(loc: list[object], value: object) -> JSONDict | None:
    """None when `value` is one of the models the API lists (or null), else the `literal_error`."""
    if value is None or (isinstance(value, str) and value in AI_MODELS):
        return None
    return {
        "type": "literal_error",
        "loc": loc,
        "msg": f"Input should be {_AI_MODELS_TEXT}",
        "input": value,
        "ctx": {"expected": _AI_MODELS_TEXT},
    }


def check_timestamp(value: str) -> JSONDict | None:
    """None when the path cursor is epoch milliseconds (all digits), else pydantic's `int_parsing` error."""
    if value.isascii() and value.isdigit():
        return None
    return {
        "type": "int_parsing",
        "loc": ["path", "from_timestamp"],
        "msg": "Input should be a valid integer, unable to parse string as an integer",
        "input": value,
    }
