"""The tools' arguments: their schema (type, description, limits) and the checks that turn a bad value into an
error saying what to send instead of a schema error."""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Mapping
from functools import cache
from typing import Annotated, Any

from pydantic import Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from flow_mcp.errors import InvalidArgumentError
from flow_mcp.flowhunt.client import SESSION_ID_PATTERN
from flow_mcp.flowhunt.wire import AI_MODELS
from flow_mcp.server.callers import HANDLE_PATTERN

MAX_MESSAGE_BYTES = 64 * 1024
MAX_HOOK_ID_CHARS = 256  # FlowHunt's own bound on resume-hook's hook_id
MAX_FORM_DATA_BYTES = 64 * 1024
MAX_VARIABLES = 100
MAX_VARIABLE_BYTES = 64 * 1024  # all names and values together
MAX_ATTACHMENTS = 10
MAX_FLOWS_LISTED = 200
MAX_POLL_WAIT_SECONDS = 45.0
MIN_ASK_TIMEOUT_SECONDS = 1.0
MAX_ASK_TIMEOUT_SECONDS = 600.0

SessionIdArg = Annotated[
    str,
    Field(
        description="A FlowHunt session id from create_session or ask.",
        json_schema_extra={"pattern": HANDLE_PATTERN.pattern},
    ),
]
OptionalSessionIdArg = Annotated[
    str | None,
    Field(
        description="Continue this session (from a previous ask); omit to start a new conversation.",
        json_schema_extra={"pattern": HANDLE_PATTERN.pattern},
    ),
]
MessageArg = Annotated[
    str, Field(description="Your message to the Flow Assistant, e.g. 'Build a flow that answers FAQ from my docs'.")
]
AiModelArg = Annotated[
    str | None,
    Field(
        description="Model the assistant uses; omit for FlowHunt's default.",
        json_schema_extra={"enum": [*AI_MODELS, None]},
    ),
]
ContextFlowArg = Annotated[
    str | None,
    Field(
        description="Id of an existing FlowHunt flow for the assistant to work on, if any.",
        json_schema_extra={"pattern": SESSION_ID_PATTERN.pattern},
    ),
]
WelcomeArg = Annotated[bool, Field(description="Ask the assistant to post a welcome message first.")]
CursorArg = Annotated[
    str,
    Field(description="The cursor from invoke, ask or the previous poll_events (or a FlowHunt timestamp)."),
]
# The limits are in the schema for clients to see; the tools check them (check_seconds), with a text that says so.
WaitSecondsArg = Annotated[
    float,
    Field(
        description="Wait up to this long (0-45 s) for new events instead of returning at once.",
        json_schema_extra={"minimum": 0, "maximum": MAX_POLL_WAIT_SECONDS},
    ),
]
TimeoutSecondsArg = Annotated[
    float | None,
    Field(
        description="Return after this many seconds even if the turn is still running (default 50).",
        json_schema_extra={"minimum": MIN_ASK_TIMEOUT_SECONDS, "maximum": MAX_ASK_TIMEOUT_SECONDS},
    ),
]


FlowIdArg = Annotated[
    str,
    Field(
        description="The flow to run: a flow_id from list_flows.",
        json_schema_extra={"pattern": SESSION_ID_PATTERN.pattern},
    ),
]
FlowMessageArg = Annotated[str, Field(description="The input for the flow, e.g. the question or the task it handles.")]
VariablesArg = Annotated[
    dict[str, str] | None,
    Field(description='Values for the flow\'s variables, names to texts (a new session only), e.g. {"lang": "en"}.'),
]
FlowSessionIdArg = Annotated[
    str | None,
    Field(
        description="Continue this flow session (from a previous run_flow); omit to start a new one.",
        json_schema_extra={"pattern": HANDLE_PATTERN.pattern},
    ),
]
AttachmentsArg = Annotated[
    list[dict[str, str]] | None,
    Field(
        description='Files for the flow, sent before the message: each {"path": "/local/file.pdf"} (stdio only: a '
        'file on the machine running this server) or {"name": "notes.txt", "content_base64": "..."}.',
        json_schema_extra={
            "maxItems": MAX_ATTACHMENTS,
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "name": {"type": "string"},
                    "content_base64": {"type": "string"},
                },
            },
        },
    ),
]
HookIdArg = Annotated[
    str,
    Field(
        description="The hook to answer: waiting_for.hook_id of the result that is waiting for input.",
        json_schema_extra={"minLength": 1, "maxLength": MAX_HOOK_ID_CHARS},
    ),
]
ReplyArg = Annotated[
    str,
    Field(description='Your answer to what the turn asks; for an approval "approve" or "reject: <reason>".'),
]
FormDataArg = Annotated[
    dict[str, Any] | None,
    Field(description='Structured answer fields, if the hook asks for a form; for an approval {"approved": true}.'),
]
FlowQueryArg = Annotated[
    str | None, Field(description="Only flows whose name or description contains this text (any case).")
]
FlowLimitArg = Annotated[
    int,
    Field(
        description="At most this many flows (1-200).", json_schema_extra={"minimum": 1, "maximum": MAX_FLOWS_LISTED}
    ),
]


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


def check_context_flow_id(flow_id: str | None) -> str | None:
    """A FlowHunt flow id (1-128 letters, digits, '-' or '_', as every FlowHunt id), or None for no flow."""
    if flow_id is not None and not SESSION_ID_PATTERN.fullmatch(flow_id):
        raise InvalidArgumentError(
            "Malformed context_flow_id: it is a FlowHunt flow id, 1-128 letters, digits, '-' or '_' "
            "(as in the flow's URL). Omit it to start without a flow."
        )
    return flow_id


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


def check_flow_id(flow_id: str) -> str:
    """A FlowHunt flow id, as list_flows gives it."""
    if not isinstance(flow_id, str) or not SESSION_ID_PATTERN.fullmatch(flow_id):
        raise InvalidArgumentError(
            "Malformed flow_id: it is 1-128 letters, digits, '-' or '_'. Call list_flows and pass a flow_id it returns."
        )
    return flow_id


def check_variables(variables: Mapping[str, str] | None) -> dict[str, str]:
    """Flow variables: at most 100 names, each a non-empty text, 64 KiB in all."""
    values = dict(variables or {})
    if len(values) > MAX_VARIABLES:
        raise InvalidArgumentError(f"variables has {len(values)} names; at most {MAX_VARIABLES} are taken.")
    if any(not name.strip() for name in values):
        raise InvalidArgumentError('variables has an empty name: every variable needs a name, e.g. {"lang": "en"}.')
    if _utf8_size(values, "variables") > MAX_VARIABLE_BYTES:
        raise InvalidArgumentError(f"variables take more than {MAX_VARIABLE_BYTES} bytes: send shorter values.")
    return values


def check_hook_id(hook_id: str) -> str:
    """A hook id as FlowHunt gives it: 1-256 characters."""
    if not hook_id.strip() or len(hook_id) > MAX_HOOK_ID_CHARS:
        raise InvalidArgumentError(
            f"hook_id must be 1-{MAX_HOOK_ID_CHARS} characters: pass waiting_for.hook_id of the waiting result."
        )
    return hook_id


def check_form_data(form_data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Structured answer fields: any JSON object up to 64 KiB."""
    if form_data is None:
        return None
    if _utf8_size(form_data, "form_data") > MAX_FORM_DATA_BYTES:
        raise InvalidArgumentError(f"form_data is larger than {MAX_FORM_DATA_BYTES} bytes as JSON: send less.")
    return dict(form_data)


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_FLOWS_LISTED:
        raise InvalidArgumentError(f"limit must be a whole number from 1 to {MAX_FLOWS_LISTED}.")
    return limit


def check_query(query: str | None) -> str | None:
    return query.strip() or None if query is not None else None


def _utf8_size(value: Any, name: str) -> int:
    try:
        return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgumentError(f"{name} contains invalid Unicode (lone surrogates): send plain text.") from None


def check_seconds(name: str, value: float, *, low: float, high: float) -> float:
    """A finite number of seconds within [low, high]."""
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidArgumentError(f"{name} must be a number of seconds from {low:g} to {high:g}.")
    return float(value)


def _squash(text: str) -> str:
    return "".join(text.split()).lower()


# -- argument types ------------------------------------------------------------------------------------------


def argument_errors(tool: Callable[..., Any], arguments: Mapping[str, Any]) -> list[str]:
    """What is wrong with the types of ``arguments`` for ``tool``: one sentence per argument, naming it and saying
    what to send (the SDK's own message is a pydantic dump). Values are checked as the SDK checks them."""
    errors = []
    for name, (adapter, required) in _parameters(tool).items():
        wanted, meaning = _wanted(adapter, required), _meaning(name, adapter)
        if name not in arguments:
            if required:
                errors.append(f"Argument {name} is missing: send {wanted}.{meaning}")
            continue
        try:
            adapter.validate_python(_as_the_sdk_reads(adapter, arguments[name]))
        except PydanticValidationError:
            got = _kind(arguments[name])
            if wanted.startswith(got):  # the right kind with something wrong inside: a list or an object
                errors.append(f"Argument {name} holds a value of the wrong type: send {wanted}.{meaning}")
            else:
                errors.append(f"Argument {name} must be {wanted}; got {got}.{meaning}")
    return errors


@cache
def _parameters(tool: Callable[..., Any]) -> dict[str, tuple[TypeAdapter[Any], bool]]:
    signature = inspect.signature(tool, eval_str=True)
    return {
        name: (TypeAdapter(parameter.annotation), parameter.default is inspect.Parameter.empty)
        for name, parameter in signature.parameters.items()
        if name != "ctx"  # the MCP context, not an argument
    }


def _as_the_sdk_reads(adapter: TypeAdapter[Any], value: Any) -> Any:
    # The SDK first reads a string as JSON for any parameter but a plain str (hosts send 'null', '[1]', 'true').
    if not isinstance(value, str) or adapter.core_schema["type"] == "str":
        return value
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return value
    return value if isinstance(parsed, str | int | float) else parsed


def _wanted(adapter: TypeAdapter[Any], required: bool) -> str:
    schema = adapter.json_schema()
    kinds = [option.get("type") for option in schema.get("anyOf", [schema])]
    wanted = " or ".join(_KINDS[kind] for kind in kinds if kind in _KINDS)
    if choices := [choice for choice in schema.get("enum", []) if choice is not None]:
        wanted = "one of " + ", ".join(json.dumps(choice) for choice in choices)
    if "minimum" in schema and "maximum" in schema:
        wanted += f" from {schema['minimum']:g} to {schema['maximum']:g}"
    return wanted if required else wanted + ", or left out"


def _meaning(name: str, adapter: TypeAdapter[Any]) -> str:
    description = adapter.json_schema().get("description")
    return f" {name}: {description}" if description else ""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


_KINDS = {
    "string": "a string",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
}
