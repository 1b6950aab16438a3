"""The sandbox's Starlette app: FlowHunt's V3 Flow Assistant endpoints, the V2 published-flow endpoints
(flow_api.py), /v2/auth/me, and the /_sandbox/ controls.

Every API route is named after its call kind (config.CALL_KINDS): the fault middleware logs requests by that name
and answers 402 to the kinds the `out_of_credits` knob lists.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from flow_mcp.sandbox import flow_api
from flow_mcp.sandbox.config import SandboxConfig
from flow_mcp.sandbox.faults import FAULT_SCOPE_KEY, FaultMiddleware
from flow_mcp.sandbox.flows import flow_from_json
from flow_mcp.sandbox.sessions import ASSISTANT, FLOW
from flow_mcp.sandbox.state import SandboxState
from flow_mcp.sandbox.validation import (
    ABSENT,
    check_ai_model,
    check_bool,
    check_string,
    check_timestamp,
    missing,
    not_an_object,
    parse_json_body,
)
from flow_mcp.sandbox.web import (
    Handler,
    detail,
    foreign_workspace,
    path_session,
    session_call_refused,
    session_not_found,
    unauthorized,
    with_state,
    workspace_errors,
    workspace_of,
)

SANDBOX_USER_ID = "user-sandbox"


def build_app(config: SandboxConfig | None = None, state: SandboxState | None = None) -> Starlette:
    """Build the simulator app; pass `state` to share records with the caller (the state's config wins)."""
    state = state or SandboxState(config or SandboxConfig())

    def api(path: str, handler: Handler, name: str, method: str = "POST") -> Route:
        return Route(path, with_state(state, handler), methods=[method], name=name)

    def control(path: str, handler: Handler, *methods: str) -> Route:
        return Route(path, with_state(state, handler), methods=list(methods or ["GET"]))

    flows = "/v2/flows/sessions/{session_id}"
    routes = [
        api("/v2/auth/me", auth_me, "auth_me", "GET"),
        api("/v3/flow-assistants/create", create_session, "assistant_create"),
        api("/v3/flow-assistants/{session_id}/invoke", invoke_in(ASSISTANT), "assistant_invoke"),
        api(
            "/v3/flow-assistants/{session_id}/invocation_response/{from_timestamp}",
            poll_in(ASSISTANT),
            "assistant_poll",
        ),
        api("/v2/flows/", flow_api.list_flows, "flow_list"),
        api("/v2/flows/sessions/from_flow/create", flow_api.create_flow_session, "flow_session_create"),
        api("/v2/flows/{flow_id}", flow_api.get_flow, "flow_get", "GET"),
        api(f"{flows}/invoke", invoke_in(FLOW), "flow_invoke"),
        api(f"{flows}/invocation_response/{{from_timestamp}}", poll_in(FLOW), "flow_poll"),
        api(f"{flows}/attachments", flow_api.attach, "flow_attach"),
        api(f"{flows}/resume-hook", flow_api.resume_hook, "flow_resume_hook"),
        api(f"{flows}/cancel", flow_api.cancel, "flow_cancel"),
        control("/_sandbox/requests", control_requests),
        control("/_sandbox/sessions/{session_id}/events", control_events),
        control("/_sandbox/sessions/{session_id}/invocations", control_invocations),
        control("/_sandbox/sessions/{session_id}/resumes", control_resumes),
        control("/_sandbox/faults", control_faults),
        control("/_sandbox/config", control_config, "GET", "POST"),
        control("/_sandbox/reset", control_reset, "POST"),
        control("/_sandbox/flows", control_flows, "GET", "POST"),
        control("/_sandbox/flows/{flow_id}", control_remove_flow, "DELETE"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(FaultMiddleware, state=state, routes=routes)],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.sandbox = state
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    # FastAPI's shape for routing errors (404 unknown route, 405 wrong method): {"detail": "<phrase>"}.
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


# --- FlowHunt endpoints ---------------------------------------------------------------------------


async def auth_me(state: SandboxState, request: Request) -> Response:
    """GET /v2/auth/me: who the key belongs to, including its workspace."""
    workspace = workspace_of(request, state.config)
    if workspace is None:
        return unauthorized()
    return JSONResponse(
        {
            "id": SANDBOX_USER_ID,
            "email": "sandbox@example.com",
            "username": "sandbox",
            "api_key_workspace_id": workspace,
        }
    )


async def create_session(state: SandboxState, request: Request) -> Response:
    """POST /v3/flow-assistants/create?workspace_id=W."""
    key_workspace = workspace_of(request, state.config)
    if key_workspace is None:
        return unauthorized()
    errors = workspace_errors(request)
    body = parse_json_body(await request.body())
    errors.extend(body.errors)
    context_flow_id: object = None
    welcome = False
    if not body.errors and body.value is not ABSENT and body.value is not None:
        if not isinstance(body.value, dict):
            errors.append(not_an_object(body.value))
        else:
            context_flow_id = body.value.get("context_flow_id")
            error = check_string(["body", "context_flow_id"], context_flow_id, nullable=True)
            if error:
                errors.append(error)
            welcome, error = check_bool(
                ["body", "start_with_welcome_message"], body.value.get("start_with_welcome_message", False)
            )
            if error:
                errors.append(error)
    if errors:
        return detail(422, errors)
    refused = foreign_workspace(request, key_workspace)
    if refused is not None:
        return refused
    session = state.create_session(
        context_flow_id if isinstance(context_flow_id, str) else None, welcome, workspace_id=key_workspace
    )
    return JSONResponse(
        {"session_id": session.session_id, "created_at": session.created_at.isoformat()}, status_code=201
    )


def invoke_in(kind: str) -> Handler:
    """POST /v3/flow-assistants/{id}/invoke (kind "assistant") or /v2/flows/sessions/{id}/invoke (kind "flow")."""

    async def invoke(state: SandboxState, request: Request) -> Response:
        refused = session_call_refused(state, request)
        if refused is not None:
            return refused
        body = parse_json_body(await request.body())
        errors = list(body.errors)
        message: object = None
        ai_model: object = None
        if not body.errors:
            if body.value is ABSENT or body.value is None:
                errors.append(missing(["body"], None))
            elif not isinstance(body.value, dict):
                errors.append(not_an_object(body.value))
            else:
                if "message" not in body.value:
                    errors.append(missing(["body", "message"], body.value))
                else:
                    message = body.value["message"]
                    error = check_string(["body", "message"], message, nullable=False)
                    if error:
                        errors.append(error)
                if kind == ASSISTANT:  # a flow's invoke has no ai_model field (and ignores one, as pydantic does)
                    ai_model = body.value.get("ai_model")
                    error = check_ai_model(["body", "ai_model"], ai_model)
                    if error:
                        errors.append(error)
        if errors:
            return detail(422, errors)
        session = path_session(state, request, kind)
        if session is None or state.is_closed(session):
            return session_not_found()
        fault = request.scope.get(FAULT_SCOPE_KEY)
        invocation = state.invoke(
            session,
            str(message),
            ai_model if isinstance(ai_model, str) else None,
            fault if isinstance(fault, str) else None,
        )
        created_at = str(invocation.created_at_ms)
        return JSONResponse(
            {"message_id": invocation.message_id, "created_at": created_at, "cached_events": invocation.cached_events}
        )

    return invoke


def poll_in(kind: str) -> Handler:
    """POST .../{id}/invocation_response/{from_timestamp} of an assistant or a flow session."""

    async def poll(state: SandboxState, request: Request) -> Response:
        refused = session_call_refused(state, request)
        if refused is not None:
            return refused
        from_timestamp: str = request.path_params["from_timestamp"]
        error = check_timestamp(from_timestamp)
        if error:
            return detail(422, [error])
        session = path_session(state, request, kind)
        if session is None:
            return session_not_found()
        return JSONResponse(state.poll(session, int(from_timestamp)))

    return poll


# --- controls (no auth: a test harness, never exposed beyond loopback) -----------------------------


async def control_requests(state: SandboxState, request: Request) -> Response:
    """GET /_sandbox/requests: every API request received, with status and injected fault."""
    return JSONResponse(state.request_log())


async def control_events(state: SandboxState, request: Request) -> Response:
    """GET /_sandbox/sessions/{id}/events: every scheduled event, visible or not."""
    session = path_session(state, request)
    if session is None:
        return session_not_found()
    return JSONResponse(state.session_events(session))


async def control_invocations(state: SandboxState, request: Request) -> Response:
    """GET /_sandbox/sessions/{id}/invocations: every invoke accepted, to spot double sends."""
    session = path_session(state, request)
    if session is None:
        return session_not_found()
    return JSONResponse(state.session_invocations(session))


async def control_resumes(state: SandboxState, request: Request) -> Response:
    """GET /_sandbox/sessions/{id}/resumes: every resume-hook received, with its answer, to spot double resumes."""
    session = path_session(state, request)
    if session is None:
        return session_not_found()
    return JSONResponse(state.session_resumes(session))


async def control_faults(state: SandboxState, request: Request) -> Response:
    """GET /_sandbox/faults: injected faults by kind."""
    return JSONResponse(state.fault_counts())


async def control_config(state: SandboxState, request: Request) -> Response:
    """GET /_sandbox/config shows the knobs; POST applies a partial JSON object of knobs."""
    if request.method == "POST":
        body = parse_json_body(await request.body())
        if body.errors or not isinstance(body.value, dict):
            return detail(422, body.errors or [not_an_object(body.value if body.value is not ABSENT else None)])
        try:
            state.update_config(body.value)
        except ValueError as exc:
            return detail(422, str(exc))
    return JSONResponse(state.config.public_dict())


async def control_reset(state: SandboxState, request: Request) -> Response:
    """POST /_sandbox/reset: forget recorded requests and faults."""
    state.reset()
    return JSONResponse({"reset": True})


async def control_flows(state: SandboxState, request: Request) -> Response:
    """GET /_sandbox/flows lists every published flow; POST adds one flow object or a list of them (same id: replaced).

    A flow object has PublishedFlow's fields (flows.py); only `name` is required. The answer lists the flows added.
    """
    if request.method == "POST":
        body = parse_json_body(await request.body())
        if body.errors or body.value is ABSENT:
            return detail(422, body.errors or [missing(["body"], None)])
        items = body.value if isinstance(body.value, list) else [body.value]
        try:
            added = [flow_from_json(item) for item in items]
        except ValueError as exc:
            return detail(422, str(exc))
        state.catalogue.add(added)
        return JSONResponse([flow.control_view() for flow in added], status_code=201)
    return JSONResponse([flow.control_view() for flow in state.catalogue.all()])


async def control_remove_flow(state: SandboxState, request: Request) -> Response:
    """DELETE /_sandbox/flows/{flow_id}: unpublish a flow (its open sessions keep working)."""
    if not state.catalogue.remove(request.path_params["flow_id"]):
        return detail(404, "Flow not found")
    return JSONResponse({"removed": request.path_params["flow_id"]})
