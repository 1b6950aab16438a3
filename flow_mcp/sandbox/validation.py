"""Request validation that answers exactly like FastAPI/pydantic v2 does on the real server (422 bodies)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

JSONDict = dict[str, object]

AI_MODELS = ("Claude Sonnet 4.6", "GPT4.1", "O4 Mini", "O3 Mini")
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
    return check_literal(loc, value, AI_MODELS)


def check_literal(loc: list[object], value: object, options: tuple[str, ...]) -> JSONDict | None:
    """None when `value` is one of `options` (or null: every literal field here is optional), else `literal_error`."""
    if value is None or (isinstance(value, str) and value in options):
        return None
    quoted = [f"'{option}'" for option in options]
    expected = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    return {
        "type": "literal_error",
        "loc": loc,
        "msg": f"Input should be {expected}",
        "input": value,
        "ctx": {"expected": expected},
    }


def check_length(loc: list[object], value: str, min_length: int, max_length: int) -> JSONDict | None:
    """None when the string's length is within bounds, else pydantic's `string_too_short`/`string_too_long`."""
    if len(value) < min_length:
        text = f"at least {min_length} character{'' if min_length == 1 else 's'}"
        return _bound_error("string_too_short", loc, f"String should have {text}", value, min_length=min_length)
    if len(value) > max_length:
        text = f"at most {max_length} characters"
        return _bound_error("string_too_long", loc, f"String should have {text}", value, max_length=max_length)
    return None


def _bound_error(kind: str, loc: list[object], msg: str, value: object, **ctx: int) -> JSONDict:
    return {"type": kind, "loc": loc, "msg": msg, "input": value, "ctx": ctx}


_INTEGER_TEXT = re.compile(r"\s*[+-]?\d+(\.0*)?\s*")


def check_int(loc: list[object], value: object, ge: int) -> tuple[int, JSONDict | None]:
    """Coerce an int field (with a lower bound) the way pydantic's lax mode does."""
    number: int | None = None
    error: JSONDict = {"type": "int_type", "loc": loc, "msg": "Input should be a valid integer", "input": value}
    # A bool is an int here: lax mode takes true as 1.
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        number = int(value)
    elif isinstance(value, float):
        error.update(type="int_from_float", msg="Input should be a valid integer, got a number with a fractional part")
    elif isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        number = int(float(value)) if "." in value else int(value)
    elif isinstance(value, str):
        error.update(type="int_parsing", msg="Input should be a valid integer, unable to parse string as an integer")
    if number is None:
        return 0, error
    if number < ge:
        return number, _bound_error(
            "greater_than_equal", loc, f"Input should be greater than or equal to {ge}", value, ge=ge
        )
    return number, None


def check_object(loc: list[object], value: object, model: str | None = None) -> JSONDict | None:
    """None when `value` is a JSON object (or null), else `dict_type` (a dict field) or `model_type` (a model)."""
    if value is None or isinstance(value, dict):
        return None
    if model is None:
        return {"type": "dict_type", "loc": loc, "msg": "Input should be a valid dictionary", "input": value}
    msg = f"Input should be a valid dictionary or instance of {model}"
    return {"type": "model_type", "loc": loc, "msg": msg, "input": value, "ctx": {"class_name": model}}


def check_string_map(loc: list[object], value: object) -> list[JSONDict]:
    """The errors of a `dict[str, str] | None` field: not an object, or each value that is not a string."""
    error = check_object(loc, value)
    if error or not isinstance(value, dict):
        return [error] if error else []
    return [e for key, item in value.items() if (e := check_string([*loc, key], item, nullable=False))]


def body_object(body: Body) -> tuple[dict[str, object], list[JSONDict]]:
    """A required JSON-object body, or FastAPI's errors for a missing, undecodable or non-object one."""
    if body.errors:
        return {}, body.errors
    if body.value is ABSENT or body.value is None:
        return {}, [missing(["body"], None)]
    if not isinstance(body.value, dict):
        return {}, [not_an_object(body.value)]
    return body.value, []


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
