"""The sandbox's Starlette app: FlowHunt's V3 Flow Assistant endpoints, /v2/auth/me, and /_sandbox/ controls.

Checks run in the real server's order: authentication, then request validation (422), then the handler's
own checks (403 foreign workspace, 404 unknown session).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from flow_mcp.sandbox.config import SandboxConfig
from flow_mcp.sandbox.faults import FAULT_SCOPE_KEY, FaultMiddleware
from flow_mcp.sandbox.state import JSONDict, SandboxState, Session
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

SANDBOX_USER_ID = "user-sandbox"

_Handler = Callable[[SandboxState, Request], Awaitable[Response]]
_Endpoint = Callable[[Request], Awaitable[Response]]


def build_app(config: SandboxConfig | None = None, state: SandboxState | None = None) -> Starlette:
    """Build the simulator app; pass `state` to share records with the caller (the state's config wins)."""
    state = state or SandboxState(config or SandboxConfig())
    routes = [
        Route("/v2/auth/me", _with(state, auth_me), methods=["GET"]),
        Route("/v3/flow-assistants/create", _with(state, create_session), methods=["POST"]),
        Route("/v3/flow-assistants/{session_id}/invoke", _with(state, invoke), methods=["POST"]),
        Route(
            "/v3/flow-assistants/{session_id}/invocation_response/{from_timestamp}",
            _with(state, poll),
            methods=["POST"],
        ),
        Route("/_sandbox/requests", _with(state, control_requests), methods=["GET"]),
        Route("/_sandbox/sessions/{session_id}/events", _with(state, control_events), methods=["GET"]),
        Route("/_sandbox/sessions/{session_id}/invocations", _with(state, control_invocations), methods=["GET"]),
        Route("/_sandbox/faults", _with(state, control_faults), methods=["GET"]),
        Route("/_sandbox/config", _with(state, control_config), methods=["GET", "POST"]),
        Route("/_sandbox/reset", _with(state, control_reset), methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(FaultMiddleware, state=state)],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.sandbox = state
    return app


def _with(state: SandboxState, handler: _Handler) -> _Endpoint:
    async def endpoint(request: Request) -> Response:
        return await handler(state, request)

    return endpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    # FastAPI's shape for routing errors (404 unknown route, 405 wrong method): {"detail": "<phrase>"}.
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def _detail(status: int, detail: object, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _workspace_of(request: Request, config: SandboxConfig) -> str | None:
    """The workspace of the API key the request carries, or None for no key or an unknown one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    candidates = [request.headers.get("api-key", "")]
    if scheme.lower() == "bearer":
        candidates.append(token.strip())
    found = None
    for key, workspace in config.workspaces_by_key().items():
        if any(hmac.compare_digest(candidate.encode(), key.encode()) for candidate in candidates if candidate):
            found = workspace
    return found


def _authorized(request: Request, config: SandboxConfig) -> bool:
    return _workspace_of(request, config) is not None


def _unauthorized() -> JSONResponse:
    # Never echo what the client sent: it may be a real key pointed at the wrong server.
    return _detail(401, "Invalid API key", {"WWW-Authenticate": "Bearer"})


# --- FlowHunt endpoints ---------------------------------------------------------------------------


async def auth_me(state: SandboxState, request: Request) -> Response:
    """GET /v2/auth/me: who the key belongs to, including its workspace."""
    workspace = _workspace_of(request, state.config)
    if workspace is None:
        return _unauthorized()
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
    key_workspace = _workspace_of(request, state.config)
    if key_workspace is None:
        return _unauthorized()
    errors: list[JSONDict] = []
    workspace_id = request.query_params.get("workspace_id")
    if workspace_id is None:
        errors.append(missing(["query", "workspace_id"], None))
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
        return _detail(422, errors)
    if workspace_id != key_workspace:
        return _detail(403, "API key does not belong to this workspace")
    session = state.create_session(
        context_flow_id if isinstance(context_flow_id, str) else None, welcome, workspace_id=key_workspace
    )
    return JSONResponse(
        {"session_id": session.session_id, "created_at": session.created_at.isoformat()}, status_code=201
    )


async def invoke(state: SandboxState, request: Request) -> Response:
    """POST /v3/flow-assistants/{session_id}/invoke."""
    if state.config.require_auth_on_session_calls and not _authorized(request, state.config):
        return _unauthorized()
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
            ai_model = body.value.get("ai_model")
            error = check_ai_model(["body", "ai_model"], ai_model)
            if error:
                errors.append(error)
    if errors:
        return _detail(422, errors)
    session = _open_session(state, request)
    if session is None or state.is_closed(session):
        return _detail(404, "Session not found")
    fault = request.scope.get(FAULT_SCOPE_KEY)
    invocation = state.invoke(
        session,
        str(message),
        ai_model if isinstance(ai_model, str) else None,
        fault if isinstance(fault, str) else None,
    )
    return JSONResponse(
        {"message_id": invocation.message_id, "created_at": str(invocation.created_at_ms), "cached_events": []}
    )


async def poll(state: SandboxState, request: Request) -> Response:
    """POST /v3/flow-assistants/{session_id}/invocation_response/{from_timestamp}."""
    if state.config.require_auth_on_session_calls and not _authorized(request, state.config):
        return _unauthorized()
    from_timestamp: str = request.path_params["from_timestamp"]
    error = check_timestamp(from_timestamp)
    if error:
        return _detail(422, [error])
    session = _open_session(state, request)
    if session is None:
        return _detail(404, "Session not found")
    return JSONResponse(state.poll(session, int(from_timestamp)))


def _open_session(state: SandboxState, request: Request) -> Session | None:
    return state.get_session(request.path_params["session_id"])


# --- controls (no auth: a test harness, never exposed beyond loopback) -----------------------------


async def control_requests(state: SandboxState, request: Request) -> Response:
    """GET /_sandbox/requests: every API request received, with status and injected fault."""
    return JSONResponse(state.request_log())


async def control_events(state: SandboxState, request: Request) -> Response:
    """GET /_sandbox/sessions/{id}/events: every scheduled event, visible or not."""
    session = _open_session(state, request)
    if session is None:
        return _detail(404, "Session not found")
    return JSONResponse(state.session_events(session))


async def control_invocations(state: SandboxState, request: Request) -> Response:
    """GET /_sandbox/sessions/{id}/invocations: every invoke accepted, to spot double sends."""
    session = _open_session(state, request)
    if session is None:
        return _detail(404, "Session not found")
    return JSONResponse(state.session_invocations(session))


async def control_faults(state: SandboxState, request: Request) -> Response:
    """GET /_sandbox/faults: injected faults by kind."""
    return JSONResponse(state.fault_counts())


async def control_config(state: SandboxState, request: Request) -> Response:
    """GET /_sandbox/config shows the knobs; POST applies a partial JSON object of knobs."""
    if request.method == "POST":
        body = parse_json_body(await request.body())
        if body.errors or not isinstance(body.value, dict):
            return _detail(422, body.errors or [not_an_object(body.value if body.value is not ABSENT else None)])
        try:
            state.update_config(body.value)
        except ValueError as exc:
            return _detail(422, str(exc))
    return JSONResponse(state.config.public_dict())


async def control_reset(state: SandboxState, request: Request) -> Response:
    """POST /_sandbox/reset: forget recorded requests and faults."""
    state.reset()
    return JSONResponse({"reset": True})
