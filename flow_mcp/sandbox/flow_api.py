"""FlowHunt's V2 published-flow endpoints: list and read flows, open a flow session, attach files, resume a hook,
cancel. A flow session's invoke and poll are the assistant's handlers (app.py) serving sessions of kind "flow".

The key calls (list, get, create a session) need an API key; the session calls take the session id as their
capability, as on the real server (unless the `require_auth_on_session_calls` knob says otherwise).
"""

from __future__ import annotations

import mimetypes

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from flow_mcp.sandbox.faults import ENTRY_SCOPE_KEY
from flow_mcp.sandbox.flows import FLOW_TYPES, FlowQuery
from flow_mcp.sandbox.sessions import ASSISTANT, FLOW, JSONDict
from flow_mcp.sandbox.state import SandboxState
from flow_mcp.sandbox.validation import (
    body_object,
    check_int,
    check_length,
    check_literal,
    check_object,
    check_string,
    check_string_map,
    missing,
    parse_json_body,
)
from flow_mcp.sandbox.web import (
    detail,
    foreign_workspace,
    path_session,
    session_call_refused,
    session_not_found,
    unauthorized,
    workspace_errors,
    workspace_of,
)

FLOW_BRANCHES = ("P", "D")
HOOK_ID_MAX = 256
RESUME_MESSAGE_MAX = 65_536
_DEFAULT_LIMIT = 100


def _flow_not_found() -> JSONResponse:
    return detail(404, "Flow not found")


async def list_flows(state: SandboxState, request: Request) -> Response:
    """POST /v2/flows/?workspace_id=W: one page of the workspace's flows, filtered."""
    key_workspace = workspace_of(request, state.config)
    if key_workspace is None:
        return unauthorized()
    errors = workspace_errors(request)
    body, body_errors = body_object(parse_json_body(await request.body()))
    query, query_errors = _flow_query(body)
    errors += body_errors or query_errors
    if errors:
        return detail(422, errors)
    refused = foreign_workspace(request, key_workspace)
    if refused is not None:
        return refused
    return JSONResponse([flow.summary() for flow in state.catalogue.search(key_workspace, query)])


def _flow_query(body: dict[str, object]) -> tuple[FlowQuery, list[JSONDict]]:
    errors: list[JSONDict] = []
    texts: dict[str, str | None] = {}
    for name in ("name", "category_id"):
        value = body.get(name)
        error = check_string(["body", name], value, nullable=True)
        errors += [error] if error else []
        texts[name] = value if isinstance(value, str) else None
    flow_type = body.get("flow_type")
    error = check_literal(["body", "flow_type"], flow_type, FLOW_TYPES)
    errors += [error] if error else []
    limit, error = check_int(["body", "limit"], body.get("limit", _DEFAULT_LIMIT), ge=1)
    errors += [error] if error else []
    pagination = body.get("pagination")
    error = check_object(["body", "pagination"], pagination, model="PaginationRequest")
    errors += [error] if error else []
    scroll_id: str | None = None
    if isinstance(pagination, dict):
        for name in ("sorting_key_value", "scroll_id"):
            error = check_string(["body", "pagination", name], pagination.get(name), nullable=True)
            errors += [error] if error else []
        scroll_id = pagination.get("scroll_id") if isinstance(pagination.get("scroll_id"), str) else None
    query = FlowQuery(
        flow_type=flow_type if isinstance(flow_type, str) else None,
        name=texts["name"],
        category_id=texts["category_id"],
        limit=limit,
        scroll_id=scroll_id,
    )
    return query, errors


async def get_flow(state: SandboxState, request: Request) -> Response:
    """GET /v2/flows/{flow_id}?workspace_id=W: one flow in detail."""
    key_workspace = workspace_of(request, state.config)
    if key_workspace is None:
        return unauthorized()
    errors = workspace_errors(request)
    if errors:
        return detail(422, errors)
    refused = foreign_workspace(request, key_workspace)
    if refused is not None:
        return refused
    flow = state.catalogue.get(request.path_params["flow_id"], key_workspace)
    return _flow_not_found() if flow is None else JSONResponse(flow.detail())


async def create_flow_session(state: SandboxState, request: Request) -> Response:
    """POST /v2/flows/sessions/from_flow/create?workspace_id=W: open a session of a published flow (201)."""
    key_workspace = workspace_of(request, state.config)
    if key_workspace is None:
        return unauthorized()
    errors = workspace_errors(request)
    body, body_errors = body_object(parse_json_body(await request.body()))
    errors += body_errors
    if not body_errors:
        if "flow_id" not in body:
            errors.append(missing(["body", "flow_id"], body))
        else:
            error = check_string(["body", "flow_id"], body["flow_id"], nullable=False)
            errors += [error] if error else []
        errors += check_string_map(["body", "variables"], body.get("variables"))
        error = check_literal(["body", "flow_branch"], body.get("flow_branch"), FLOW_BRANCHES)
        errors += [error] if error else []
    if errors:
        return detail(422, errors)
    refused = foreign_workspace(request, key_workspace)
    if refused is not None:
        return refused
    flow = state.catalogue.get(str(body["flow_id"]), key_workspace)
    if flow is None:
        return _flow_not_found()
    variables = body.get("variables")
    branch = body.get("flow_branch")
    session = state.create_flow_session(
        flow,
        dict(variables) if isinstance(variables, dict) else {},
        branch if isinstance(branch, str) else None,
        key_workspace,
    )
    return JSONResponse(
        {"session_id": session.session_id, "created_at": session.created_at.isoformat()}, status_code=201
    )


async def attach(state: SandboxState, request: Request) -> Response:
    """POST /v2/flows/sessions/{id}/attachments: a multipart upload in the field `file`."""
    refused = session_call_refused(state, request)
    if refused is not None:
        return refused
    async with request.form() as form:
        upload = form.get("file")
        if upload is None:
            return detail(422, [missing(["body", "file"], None)])
        if not isinstance(upload, UploadFile):
            msg = "Value error, Expected UploadFile, received: <class 'str'>"
            return detail(422, [{"type": "value_error", "loc": ["body", "file"], "msg": msg, "input": upload}])
        session = path_session(state, request, FLOW)
        if session is None:
            return session_not_found()
        size = len(await upload.read())
        limit = state.config.max_attachment_bytes
        if limit is not None and size > limit:
            return detail(413, f"File too large: the limit is {limit} bytes")
        name = upload.filename or "upload"
        file_type = upload.content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        return JSONResponse(state.add_attachment(session, name, file_type, size))


async def resume_hook(state: SandboxState, request: Request) -> Response:
    """POST /v2/flows/sessions/{id}/resume-hook: answer a waiting hook, once."""
    refused = session_call_refused(state, request)
    if refused is not None:
        return refused
    body, errors = body_object(parse_json_body(await request.body()))
    if not errors:
        errors = _resume_errors(body)
    if errors:
        return detail(422, errors)
    session = path_session(state, request)
    if session is None or state.is_closed(session):
        return session_not_found()
    if session.kind == ASSISTANT and state.config.assistant_resume != "accept":
        return _assistant_refused(state.config.assistant_resume, session.session_id)
    hook_id = str(body["hook_id"])
    form_data = body.get("form_data")
    status = state.resume_hook(
        session, hook_id, str(body["message"]), form_data if isinstance(form_data, dict) else None
    )
    entry = request.scope.get(ENTRY_SCOPE_KEY)
    if isinstance(entry, dict):
        state.note(entry, hook_id=hook_id, resume_status=status)
    return JSONResponse({"status": status})


def _resume_errors(body: dict[str, object]) -> list[JSONDict]:
    errors: list[JSONDict] = []
    for name, min_length, max_length in (("hook_id", 1, HOOK_ID_MAX), ("message", 0, RESUME_MESSAGE_MAX)):
        if name not in body:
            errors.append(missing(["body", name], body))
            continue
        value = body[name]
        error = check_string(["body", name], value, nullable=False)
        if error is None and isinstance(value, str):
            error = check_length(["body", name], value, min_length, max_length)
        errors += [error] if error else []
    error = check_object(["body", "form_data"], body.get("form_data"))
    return errors + ([error] if error else [])


def _assistant_refused(answer: str, session_id: str) -> JSONResponse:
    """How the `assistant_resume` knob has resume-hook refuse a Flow Assistant session."""
    if answer == "404":
        return session_not_found()
    if answer == "405":
        return detail(405, "Method Not Allowed")
    msg = "Value error, not a flow session: resume it in FlowHunt"
    return detail(422, [{"type": "value_error", "loc": ["path", "session_id"], "msg": msg, "input": session_id}])


async def cancel(state: SandboxState, request: Request) -> Response:
    """POST /v2/flows/sessions/{id}/cancel: stop the running turn."""
    refused = session_call_refused(state, request)
    if refused is not None:
        return refused
    session = path_session(state, request, FLOW)
    if session is None:
        return session_not_found()
    state.cancel(session)
    return JSONResponse({"status": "cancelled"})
