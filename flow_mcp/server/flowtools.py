"""Each chosen published flow as a tool of its own (FLOW_MCP_FLOW_TOOLS): ``flow_<name>``, a run_flow for one flow.

The flow tools are never registered with the SDK: a middleware adds them to the caller's tools/list and turns a
call of one into the run_flow call it stands for (``flow_id`` filled in), so it runs through run_flow's code, with
run_flow's result. That way each caller sees its own: over HTTP with --flowhunt-key-from-client, the flows of
the workspace of the key it sends (a catalogue per key fingerprint); otherwise the server's one catalogue.

A catalogue is read from FlowHunt at its first tools/list (nothing at start-up), then re-read in the background
every FLOW_MCP_FLOW_TOOLS_TTL seconds; when its tools change, clients hear notifications/tools/list_changed (on
2025-era connections that listed it, and on every 2026-07-28 subscriptions/listen stream). A failure to read it is
logged and the last good list (or none) is served: the core tools never depend on it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
import structlog
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.subscriptions import SubscriptionBus, ToolsListChanged
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import SecretStr
from starlette.requests import Request

from flow_mcp.config import Settings, key_fingerprint
from flow_mcp.errors import FlowMCPError
from flow_mcp.flowhunt.catalogue import PREFIX, chosen, parse_choice, tool_names, unmatched
from flow_mcp.flowhunt.client import SESSION_ID_PATTERN
from flow_mcp.flowhunt.flows import details, pages
from flow_mcp.flowhunt.ratelimit import rate_lane
from flow_mcp.flowhunt.wire import FlowDetail, FlowSummary
from flow_mcp.server.callers import IDLE_SECONDS, Access

log = structlog.get_logger()

ARGUMENTS = ("message", "session_id", "variables", "timeout_seconds")
"""What a flow tool takes: run_flow's arguments but the flow (and attachments, which stay with run_flow)."""
MAX_FLOW_TOOLS = 100  # hosts cap the tools they show a model (VS Code at 128); past this, use list_flows + run_flow
LOAD_SECONDS = 30.0  # the first tools/list waits this long for FlowHunt at most
MAX_CATALOGUES = 256  # per-key catalogues kept at once (as FlowHunt clients, callers.MAX_IDLE_CLIENTS)
MAX_LISTENERS = 1024  # 2025-era connections told of a change, per catalogue
NOTIFY_SECONDS = 5.0  # a connection that does not take a notification in this long misses it
_LANE = "flow-tools"  # the listing's own lane in the key's request budget
_SHARED = ""  # the catalogue read with the server's own key
_DESCRIPTION_CHARS, _DETAIL_CHARS, _HINT_CHARS, _TITLE_CHARS = 1000, 2000, 300, 100


@dataclass(frozen=True)
class FlowTool:
    """One flow as a tool: what tools/list shows of it."""

    name: str
    flow_id: str
    title: str
    description: str
    input_hint: str | None


@dataclass
class _Catalogue:
    """The flow tools of one FlowHunt key, and who to tell when they change."""

    api_key: SecretStr | None  # the caller's own key, to re-read with; None: the server's key
    tools: dict[str, FlowTool] = field(default_factory=dict)  # by tool name
    loaded_at: float | None = None  # when last read (or tried); None: never
    used_at: float = field(default_factory=time.monotonic)
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    listeners: OrderedDict[str, ServerSession] = field(default_factory=OrderedDict)


class FlowTools:
    """The flow tools of every caller: catalogues read on demand, re-read every TTL, changes notified."""

    def __init__(self, settings: Settings, access: Access, bus: SubscriptionBus) -> None:
        self._include = parse_choice(settings.flow_tools)
        self._exclude = parse_choice(settings.flow_tools_exclude)
        self._ttl = settings.flow_tools_ttl
        self._access = access
        self._bus = bus
        self._catalogues: dict[str, _Catalogue] = {}

    async def tools(self, headers: Mapping[str, str] | None) -> list[FlowTool]:
        """The caller's flow tools, read from FlowHunt if their catalogue never was."""
        catalogue = self._catalogue(headers)
        if catalogue is None:
            return []
        if catalogue.loaded_at is None:
            async with catalogue.lock:
                if catalogue.loaded_at is None:  # not read by whoever held the lock before
                    await self._load(catalogue)
        return list(catalogue.tools.values())

    async def find(self, headers: Mapping[str, str] | None, name: str) -> FlowTool | None:
        """The caller's flow tool called ``name``, if there is one."""
        return next((tool for tool in await self.tools(headers) if tool.name == name), None)

    def names(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        """Flow id -> tool name of the caller's flow tools as last read; no FlowHunt call."""
        catalogue = self._catalogues.get(key[0]) if (key := self._key(headers)) else None
        return {tool.flow_id: tool.name for tool in catalogue.tools.values()} if catalogue else {}

    def listening(self, headers: Mapping[str, str] | None, connection: str, session: ServerSession) -> None:
        """Tell ``session`` (a 2025-era connection's) of changes to the caller's flow tools from now on."""
        catalogue = self._catalogue(headers)
        if catalogue is None:
            return
        catalogue.listeners[connection] = session
        catalogue.listeners.move_to_end(connection)
        while len(catalogue.listeners) > MAX_LISTENERS:
            catalogue.listeners.popitem(last=False)

    async def refresh_forever(self) -> None:
        """Re-read each catalogue when it is TTL old; forget a client key's catalogue when its client went idle."""
        limiter = anyio.CapacityLimiter(4)

        async def refresh(catalogue: _Catalogue) -> None:
            async with limiter, catalogue.lock:
                if await self._load(catalogue):
                    await self._notify(catalogue)

        while True:
            await anyio.sleep(min(max(self._ttl / 10, 0.1), 30.0))
            now = time.monotonic()
            self._forget_idle(now)
            due = [c for c in self._catalogues.values() if c.loaded_at is not None and now - c.loaded_at >= self._ttl]
            async with anyio.create_task_group() as tasks:
                for catalogue in due:
                    tasks.start_soon(refresh, catalogue)

    # -- reading ------------------------------------------------------------------------------------------------

    def _key(self, headers: Mapping[str, str] | None) -> tuple[str, SecretStr | None] | None:
        """Which catalogue serves a request: its key's fingerprint and the key (the server's: none), or no catalogue."""
        header = self._access.key_header
        if header is None:
            return _SHARED, None
        api_key = (headers or {}).get(header)
        return (key_fingerprint(api_key), SecretStr(api_key)) if api_key else None

    def _catalogue(self, headers: Mapping[str, str] | None) -> _Catalogue | None:
        key = self._key(headers)
        if key is None:
            return None  # a caller without a key has no flows to show (its calls say what is missing)
        fingerprint, api_key = key
        catalogue = self._catalogues.get(fingerprint)
        if catalogue is None:
            catalogue = self._catalogues[fingerprint] = _Catalogue(api_key)
            self._forget_idle(time.monotonic())
        catalogue.used_at = time.monotonic()
        return catalogue

    def _forget_idle(self, now: float) -> None:
        # A client's key is held no longer than the client itself (callers.ClientPool): idle ones go, the most
        # recently used stay, up to a bound. The server's own catalogue stays.
        mine = sorted((c.used_at, f) for f, c in self._catalogues.items() if f != _SHARED)
        for rank, (used_at, fingerprint) in enumerate(reversed(mine)):
            if rank >= MAX_CATALOGUES or now - used_at > IDLE_SECONDS:
                del self._catalogues[fingerprint]

    async def _load(self, catalogue: _Catalogue) -> bool:
        """Read the catalogue's flows from FlowHunt; whether its tools changed. A failure keeps the last good ones."""
        try:
            tools = await self._read(catalogue)
        except Exception as error:  # whatever goes wrong here must not break tools/list
            catalogue.loaded_at = time.monotonic()  # the next try comes a TTL later, not with every tools/list
            expected = isinstance(error, FlowMCPError | TimeoutError)
            log.warning(
                "flow_tools_unavailable",
                error_type=type(error).__name__,
                status=getattr(error, "status_code", None),
                serving=len(catalogue.tools),
                exc_info=None if expected else error,
            )
            return False
        changed = catalogue.loaded_at is not None and tools != catalogue.tools
        catalogue.loaded_at = time.monotonic()
        if tools != catalogue.tools:
            log.info("flow_tools_read", count=len(tools), changed=changed)
        catalogue.tools = tools
        return changed

    async def _read(self, catalogue: _Catalogue) -> dict[str, FlowTool]:
        deadline = time.monotonic() + LOAD_SECONDS
        api_key = catalogue.api_key.get_secret_value() if catalogue.api_key else None
        with rate_lane(_LANE), anyio.fail_after(LOAD_SECONDS):
            async with self._access.caller(_LANE, api_key) as caller:
                flows = [flow async for page in pages(caller.client, deadline=deadline) for flow in page]
                picked = self._pick(flows)
                detail = await details(caller.client, picked, deadline=deadline)
        names = tool_names((flow.id, flow.name) for flow in picked)
        return {names[flow.id]: flow_tool(flow, detail.get(flow.id), names[flow.id]) for flow in picked}

    def _pick(self, flows: list[FlowSummary]) -> list[FlowSummary]:
        if missing := unmatched(flows, self._include):
            log.warning("flow_tools_unmatched", items=missing, help="no published flow has this id or name")
        # run_flow takes only ids of FlowHunt's alphabet: a flow with another id stays reachable by nothing.
        picked = [flow for flow in chosen(flows, self._include, self._exclude) if SESSION_ID_PATTERN.fullmatch(flow.id)]
        if len(picked) > MAX_FLOW_TOOLS:
            log.warning("flow_tools_cut", chosen=len(picked), kept=MAX_FLOW_TOOLS, help="narrow FLOW_MCP_FLOW_TOOLS")
        return picked[:MAX_FLOW_TOOLS]

    async def _notify(self, catalogue: _Catalogue) -> None:
        """Tell clients the tools changed: every 2026-07-28 listen stream (a stream carries no identity to pick by),
        and the 2025-era connections that listed this catalogue, each bounded in time."""
        await self._bus.publish(ToolsListChanged())

        async def tell(connection: str, session: ServerSession) -> None:
            with anyio.move_on_after(NOTIFY_SECONDS):
                try:
                    await session.send_tool_list_changed()
                except Exception as error:  # a connection that is gone: forget it
                    log.debug("flow_tools_listener_gone", error_type=type(error).__name__)
                    catalogue.listeners.pop(connection, None)

        async with anyio.create_task_group() as tasks:
            for connection, session in list(catalogue.listeners.items()):
                tasks.start_soon(tell, connection, session)


def flow_tool(flow: FlowSummary, detail: FlowDetail | None, name: str) -> FlowTool:
    """The tool for ``flow``, described from its description, detailed description and input hint."""
    title = _cut(flow.name.strip() or f"Flow {flow.id}", _TITLE_CHARS)
    hint = (
        _cut(detail.try_flow_input_placeholder.strip(), _HINT_CHARS)
        if detail and detail.try_flow_input_placeholder
        else None
    )
    parts = [f'Run the published FlowHunt flow "{title}" (flow_id {flow.id}) on a message and get its answer.']
    if flow.description.strip():
        parts.append(_cut(flow.description.strip(), _DESCRIPTION_CHARS))
    if detail and detail.detailed_description:
        parts.append(_cut(detail.detailed_description.strip(), _DETAIL_CHARS))
    if hint:
        parts.append(f"Input: {hint}")
    parts.append(
        'Pass the returned session_id to continue the conversation. If the status is "running", follow with '
        'poll_events(session_id, cursor, wait_seconds=30); if "waiting_for_input" with a hook_id, answer with respond.'
    )
    return FlowTool(name=name, flow_id=flow.id, title=title, description="\n\n".join(parts), input_hint=hint)


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


@asynccontextmanager
async def running_flow_tools(
    settings: Settings, access: Access, bus: SubscriptionBus
) -> AsyncIterator[FlowTools | None]:
    """The server's flow tools, re-read in the background while the server runs; None when they are off."""
    if not settings.flow_tools:
        yield None
        return
    flow_tools = FlowTools(settings, access, bus)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(flow_tools.refresh_forever)
        try:
            yield flow_tools
        finally:
            tasks.cancel_scope.cancel()


# -- the middleware ----------------------------------------------------------------------------------------------

RequestContext = ServerRequestContext[Any, Any]


async def flow_tools_middleware(ctx: RequestContext, call_next: CallNext) -> HandlerResult:
    """Flow tools in tools/list, their calls as run_flow calls, and tools.listChanged in the capabilities."""
    flow_tools: FlowTools | None = getattr(ctx.lifespan_context, "flow_tools", None)
    if flow_tools is None or ctx.request_id is None:
        return await call_next(ctx)
    params = ctx.params if isinstance(ctx.params, Mapping) else {}
    headers = ctx.request.headers if isinstance(ctx.request, Request) else None
    if ctx.method == "tools/call" and str(params.get("name", "")).startswith(PREFIX):
        return await _call(ctx, call_next, flow_tools, params, headers)
    result = await call_next(ctx)
    if not isinstance(result, dict):
        return result
    if ctx.method == "initialize":
        # The SDK says tools.listChanged only when told at start; it is true whenever flow tools are on.
        capabilities = result.get("capabilities") or {}
        result = {
            **result,
            "capabilities": {**capabilities, "tools": {**capabilities.get("tools", {}), "listChanged": True}},
        }
    elif ctx.method == "tools/list" and not params.get("cursor"):
        result = {**result, "tools": [*result.get("tools", []), *await _listed(ctx, flow_tools, result, headers)]}
    return result


async def _listed(
    ctx: RequestContext, flow_tools: FlowTools, result: dict[str, Any], headers: Mapping[str, str] | None
) -> list[dict[str, Any]]:
    """The caller's flow tools as tools/list shows them, shaped after run_flow's own entry."""
    template = next((tool for tool in result.get("tools", []) if tool.get("name") == "run_flow"), None)
    if template is None:
        return []
    tools = await flow_tools.tools(headers)
    connection = "stdio" if ctx.request is None else (headers or {}).get("mcp-session-id")
    # 2026-07-28 clients hear of changes on their listen streams; 2025-era ones on the connection that listed.
    if connection and ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        flow_tools.listening(headers, connection, ctx.session)
    return [listed_tool(template, tool) for tool in tools]


def listed_tool(template: Mapping[str, Any], tool: FlowTool) -> dict[str, Any]:
    """A flow tool's tools/list entry: run_flow's, with its own name, texts and run_flow's arguments but the flow."""
    properties = (template.get("inputSchema") or {}).get("properties") or {}
    arguments = {name: properties[name] for name in ARGUMENTS if name in properties}
    if tool.input_hint and "message" in arguments:
        arguments["message"] = {**arguments["message"], "description": f"The input for the flow: {tool.input_hint}"}
    return {
        **template,
        "name": tool.name,
        "title": tool.title,
        "description": tool.description,
        "inputSchema": {"type": "object", "properties": arguments, "required": ["message"]},
        "annotations": {**(template.get("annotations") or {}), "title": tool.title},
    }


async def _call(
    ctx: RequestContext,
    call_next: CallNext,
    flow_tools: FlowTools,
    params: Mapping[str, Any],
    headers: Mapping[str, str] | None,
) -> HandlerResult:
    """A flow tool's call, as the run_flow call it stands for; a bad one gets a text that says what to do."""
    name = str(params["name"])
    tool = await flow_tools.find(headers, name)
    arguments = params.get("arguments") or {}
    if not isinstance(arguments, Mapping):
        return await call_next(ctx)  # the SDK refuses a request this malformed, before any tool
    if tool is None:
        problem = (
            f"There is no tool {name[:100]} (any more): its flow may have been unpublished or renamed, or the "
            "flows could not be read from FlowHunt. Call list_flows to find the flow and run_flow(flow_id, message) "
            "to run it."
        )
    elif extra := sorted(set(arguments) - set(ARGUMENTS)):
        problem = f"{name} takes {', '.join(ARGUMENTS)}; it has no argument {', '.join(extra)}."
        if "attachments" in extra:
            problem += f' To attach files, call run_flow(flow_id="{tool.flow_id}", message=..., attachments=...).'
    else:
        as_run_flow = {**params, "name": "run_flow", "arguments": {**arguments, "flow_id": tool.flow_id}}
        with structlog.contextvars.bound_contextvars(flow_tool=name):
            return await call_next(replace(ctx, params=as_run_flow))
    # The SDK knows no tool of this name, so it answers with a tool error, in the envelope of the caller's protocol
    # version; only its text is replaced.
    log.info("flow_tool_refused", tool=name[:100], known=tool is not None)
    result = await call_next(ctx)
    if isinstance(result, dict) and result.get("isError"):
        result = {**result, "content": [{"type": "text", "text": problem}]}
    return result
