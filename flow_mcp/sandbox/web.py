"""What the sandbox's endpoints share: FastAPI-shaped error bodies, API-key and workspace checks, session lookup.

Checks run in the real server's order: authentication (401), then request validation (422), then the handler's
own checks (403 foreign workspace, 404 unknown session or flow).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from flow_mcp.sandbox.config import SandboxConfig
from flow_mcp.sandbox.sessions import JSONDict, Session
from flow_mcp.sandbox.state import SandboxState
from flow_mcp.sandbox.validation import missing

Handler = Callable[[SandboxState, Request], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def with_state(state: SandboxState, handler: Handler) -> Endpoint:
    """A Starlette endpoint calling `handler` with the sandbox's state."""

    async def endpoint(request: Request) -> Response:
        return await handler(state, request)

    return endpoint


def detail(status: int, detail: object, headers: dict[str, str] | None = None) -> JSONResponse:
    """FastAPI's error body: {"detail": text or the 422 list}."""
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def workspace_of(request: Request, config: SandboxConfig) -> str | None:
    """The workspace of the API key the request carries (Bearer or Api-Key), or None for no key or an unknown one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    candidates = [request.headers.get("api-key", "")]
    if scheme.lower() == "bearer":
        candidates.append(token.strip())
    found = None
    for key, workspace in config.workspaces_by_key().items():
        if any(hmac.compare_digest(candidate.encode(), key.encode()) for candidate in candidates if candidate):
            found = workspace
    return found


def unauthorized() -> JSONResponse:
    """401, never echoing what the client sent: it may be a real key pointed at the wrong server."""
    return detail(401, "Invalid API key", {"WWW-Authenticate": "Bearer"})


def workspace_errors(request: Request) -> list[JSONDict]:
    """The 422 errors of the required `workspace_id` query parameter."""
    return [] if "workspace_id" in request.query_params else [missing(["query", "workspace_id"], None)]


def foreign_workspace(request: Request, key_workspace: str) -> JSONResponse | None:
    """403 when the query names a workspace the key does not belong to."""
    if request.query_params.get("workspace_id") != key_workspace:
        return detail(403, "API key does not belong to this workspace")
    return None


def session_call_refused(state: SandboxState, request: Request) -> JSONResponse | None:
    """401 on a session call without a key, when the `require_auth_on_session_calls` knob asks for one."""
    if state.config.require_auth_on_session_calls and workspace_of(request, state.config) is None:
        return unauthorized()
    return None


def path_session(state: SandboxState, request: Request, kind: str | None = None) -> Session | None:
    """The session the path names (of `kind`, when given), or None."""
    return state.get_session(request.path_params["session_id"], kind)


def session_not_found() -> JSONResponse:
    """404 for a session that does not exist (or is not of the kind the path serves)."""
    return detail(404, "Session not found")
