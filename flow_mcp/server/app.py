"""build_server(): the MCP server, its lifespan, and the registration of its tools, resources and prompt."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from pydantic import AnyHttpUrl

from flow_mcp._version import __version__
from flow_mcp.config import Settings
from flow_mcp.flowhunt.client import FlowHuntClient
from flow_mcp.server.callers import Access, HttpAccess
from flow_mcp.server.resources import register_resources
from flow_mcp.server.runner import Drain, TurnRunner
from flow_mcp.server.tools import TOOLS, AppState, caller_of

INSTRUCTIONS = """\
Tools for FlowHunt's AI Flow Assistant, which builds and edits FlowHunt flows (AI agents).
Use `ask` for a whole conversation turn in one call: it returns the assistant's answer, the tools it used
and the flow edits it made. Pass the returned session_id to the next `ask` to continue the conversation.
If `ask` returns status "running", the turn continues on FlowHunt: call `poll_events` with the returned
session_id and cursor (wait_seconds=30) until the status is no longer "running".
Use `create_session` + `invoke` + `poll_events` when you want to drive each step yourself."""


ClientFactory = Callable[[Settings], FlowHuntClient]


def build_server(
    settings: Settings,
    *,
    client_factory: ClientFactory = FlowHuntClient,
    http: HttpAccess | None = None,
    drain: Drain | None = None,
    token_verifier: TokenVerifier | None = None,
) -> MCPServer[AppState]:
    """The flow_mcp MCP server. Nothing here touches the network: FlowHunt is first called by a tool.

    ``http`` makes it a server for many clients (session handles, optionally each client's own FlowHunt key);
    ``drain`` is how the HTTP runner tells running calls that the server is stopping; ``token_verifier``
    makes every HTTP request need a bearer token it accepts.
    """

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        async with Access(settings, client_factory, http) as access:
            yield AppState(settings=settings, access=access, runner=TurnRunner(settings, drain or Drain()))

    mcp: MCPServer[AppState] = MCPServer(
        "flow-mcp",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level="WARNING",
        token_verifier=token_verifier,
        # Static tokens have no authorization server to advertise: no resource metadata, only the 401.
        auth=AuthSettings(issuer_url=AnyHttpUrl("http://localhost"), resource_server_url=None)
        if token_verifier
        else None,
    )
    for tool, hints in TOOLS.items():
        # The SDK passes a docstring on verbatim; hosts show it to the model, so drop the source indentation.
        mcp.tool(description=inspect.cleandoc(tool.__doc__ or ""), annotations=hints)(tool)
    register_resources(mcp, caller_of)
    return mcp
