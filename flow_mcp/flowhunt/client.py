"""FlowHuntClient: typed calls to FlowHunt's V3 assistant API and V2 published-flow API.

Each method says what to ask and reads the answer into wire models; ``requester.Requester`` sends it (the one
pooled HTTP client, made at the first request; the key's budget; retries; limits; errors mapped once). The server
creates one client per API key, in its lifespan. Every string of an answer is made safe where the body is decoded
(``wire.read_json``): lone surrogates and invalid UTF-8 become U+FFFD, the API key is scrubbed, an integer too long
for Python becomes infinity. Nothing past this layer ever holds a string that cannot be written out.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import anyio
import anyio.to_thread
import httpx2
import pydantic

from flow_mcp import telemetry
from flow_mcp.config import Settings
from flow_mcp.errors import (
    ConfigurationError,
    InvalidArgumentError,
    ResponseShapeError,
)
from flow_mcp.flowhunt.logger import get_logger
from flow_mcp.flowhunt.ratelimit import RateGate
from flow_mcp.flowhunt.requester import Call, Requester, Seen
from flow_mcp.flowhunt.timings import Timings
from flow_mcp.flowhunt.wire import (
    UNREADABLE,
    Attachment,
    FlowDetail,
    FlowSummary,
    HookAnswer,
    Invocation,
    RawEvent,
    SessionCreated,
)

log = get_logger()

SESSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # used with fullmatch: "$" alone admits "\n"
_TIMESTAMP_PATTERN = re.compile(r"[0-9]{1,20}")  # used with fullmatch
# Longer event lists are validated in a thread: past this it takes ~10-20 ms.
_VALIDATE_OFF_LOOP_EVENTS = 1000

SessionKind = Literal["assistant", "flow"]
"""A Flow Assistant (V3) session or a published flow's (V2) session: their invoke and poll live at different paths."""
_SESSION_PATHS: dict[SessionKind, str] = {"assistant": "/v3/flow-assistants", "flow": "/v2/flows/sessions"}


def validate_session_id(session_id: str) -> str:
    """A FlowHunt session id, or InvalidArgumentError saying what one looks like."""
    if not isinstance(session_id, str) or not SESSION_ID_PATTERN.fullmatch(session_id):
        raise InvalidArgumentError(
            "Malformed session_id: pass it exactly as create_session, ask or run_flow returned it."
        )
    return session_id


def validate_flow_id(flow_id: str) -> str:
    """A FlowHunt flow id (the same alphabet as a session id), or InvalidArgumentError saying what one looks like."""
    if not isinstance(flow_id, str) or not SESSION_ID_PATTERN.fullmatch(flow_id):
        raise InvalidArgumentError(
            "Malformed flow_id: it is 1-128 letters, digits, '-' or '_' as list_flows returns it (or as in the flow's "
            "URL)."
        )
    return flow_id


def _session_path(kind: SessionKind, session_id: str, call: str) -> tuple[str, str]:
    """The logged template and the real path of a session call of ``kind``."""
    base = _SESSION_PATHS[kind]
    return f"{base}/{{session_id}}/{call}", f"{base}/{quote(validate_session_id(session_id), safe='')}/{call}"


def _validate_timestamp(timestamp: str) -> str:
    if not isinstance(timestamp, str) or not _TIMESTAMP_PATTERN.fullmatch(timestamp):
        raise InvalidArgumentError("Malformed timestamp: FlowHunt timestamps are epoch milliseconds as digits.")
    return timestamp


class FlowHuntClient:
    """Typed async access to FlowHunt's Flow Assistant V3 API and its V2 published-flow API."""

    def __init__(self, settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        self._settings = settings
        self._requests = Requester(settings, transport)
        self._workspace_id = settings.workspace_id
        self._workspace_lock = anyio.Lock()
        self.timings = Timings()  # what this key's turns taught the polling schedule (flowhunt/schedule.py)

    @property
    def gate(self) -> RateGate:
        """The API key's request budget, which every request of this client passes."""
        return self._requests.gate

    @gate.setter
    def gate(self, gate: RateGate) -> None:
        self._requests.gate = gate

    @property
    def settings(self) -> Settings:
        """The settings this client was made with."""
        return self._settings

    async def __aenter__(self) -> FlowHuntClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._requests.aclose()

    # -- the API ---------------------------------------------------------------------------------

    async def me(self) -> dict[str, Any]:
        """``GET /v2/auth/me``: who the API key belongs to."""
        body: dict[str, Any] = await self._requests.send(
            Call("GET", "/v2/auth/me", "/v2/auth/me", "safe", needs_key=True)
        )
        return body

    async def workspace_id(self) -> str:
        """The configured workspace, or the API key's own, found once from ``/v2/auth/me``."""
        if self._workspace_id:
            return self._workspace_id
        async with self._workspace_lock:
            if not self._workspace_id:
                found = (await self.me()).get("api_key_workspace_id")
                # It goes into every create's query string: only an id-shaped value is used as one.
                if not isinstance(found, str) or not SESSION_ID_PATTERN.fullmatch(found.strip()):
                    raise ConfigurationError(
                        "FlowHunt did not say which workspace the API key belongs to: set FLOWHUNT_WORKSPACE_ID."
                    )
                self._workspace_id = found.strip()
                log.info("workspace_discovered", workspace_id=self._workspace_id)
        return self._workspace_id

    async def create_session(
        self,
        context_flow_id: str | None = None,
        start_with_welcome_message: bool = False,
        *,
        deadline: float | None = None,
    ) -> SessionCreated:
        """Create an assistant session in the workspace.

        ``deadline`` (on ``time.monotonic()``), here as in ``invoke`` and ``poll``: the call fails rather than
        wait, retry or read past it.
        """
        workspace = await self.workspace_id()
        body: dict[str, Any] = {"start_with_welcome_message": start_with_welcome_message}
        if context_flow_id is not None:
            body["context_flow_id"] = context_flow_id
        # A repeated create leaves at most an unused session behind, so it is retried like a read.
        call = Call(
            "POST",
            "/v3/flow-assistants/create",
            "/v3/flow-assistants/create",
            "safe",
            needs_key=True,
            params={"workspace_id": workspace},
            body=body,
        )
        created = _parse(SessionCreated, await self._requests.send(call, deadline), "create")
        if not SESSION_ID_PATTERN.fullmatch(created.session_id):
            raise ResponseShapeError("FlowHunt's create answer carries a session_id that is not a session id.")
        return created

    async def invoke(
        self,
        session_id: str,
        message: str,
        ai_model: str | None = None,
        *,
        kind: SessionKind = "assistant",
        deadline: float | None = None,
    ) -> Invocation:
        """Send a message; FlowHunt answers at once and the turn's events are then polled.

        ``kind="flow"``: a published flow's session (``ai_model`` does not apply there and is not sent).
        """
        body: dict[str, Any] = {"message": message}
        if ai_model is not None and kind == "assistant":
            body["ai_model"] = ai_model
        template, path = _session_path(kind, session_id, "invoke")
        call = Call("POST", template, path, "once", needs_key=False, body=body)
        return _parse(Invocation, await self._requests.send(call, deadline), "invoke")

    async def poll(
        self,
        session_id: str,
        from_timestamp: str,
        *,
        kind: SessionKind = "assistant",
        deadline: float | None = None,
        seen: Seen | None = None,
    ) -> list[RawEvent]:
        """Events of the session from ``from_timestamp`` on (FlowHunt's reading of the bound is unknown).

        ``seen(event_id, timestamp)`` names events the caller has already (``Cursor.delivered``): they are left out
        before they are validated or logged, and a poll that brings nothing else is logged as an empty one.
        """
        stamp = _validate_timestamp(from_timestamp)
        telemetry.count(telemetry.POLLS, 1, {"flowhunt.session.kind": kind})
        template, path = _session_path(kind, session_id, "invocation_response")
        template, path = f"{template}/{{from_timestamp}}", f"{path}/{quote(stamp, safe='')}"
        call = Call("POST", template, path, "safe", needs_key=False, expect=list, events=True, seen=seen)
        body = await self._requests.send(call, deadline)
        if len(body) > _VALIDATE_OFF_LOOP_EVENTS:
            return await anyio.to_thread.run_sync(functools.partial(parse_events, body, session_id=session_id))
        return parse_events(body, session_id=session_id)

    # -- published flows (V2) ----------------------------------------------------------------------

    async def list_flows(
        self, limit: int, scroll_id: str | None = None, *, deadline: float | None = None
    ) -> list[FlowSummary]:
        """One page of the workspace's flows: at most ``limit``, those after the flow ``scroll_id`` names."""
        workspace = await self.workspace_id()
        body = {"limit": limit, "pagination": {"scroll_id": scroll_id} if scroll_id else {}}
        params = {"workspace_id": workspace}
        call = Call("POST", "/v2/flows/", "/v2/flows/", "safe", needs_key=True, params=params, body=body, expect=list)
        items = await self._requests.send(call, deadline)
        flows: list[FlowSummary] = []
        for item in items:
            try:
                flows.append(FlowSummary.model_validate(item))
            except pydantic.ValidationError:
                log.warning("flow_dropped", reason="not a flow with an id")
        return flows

    async def get_flow(self, flow_id: str, *, deadline: float | None = None) -> FlowDetail:
        """One flow in detail (its input hint and longer description)."""
        workspace = await self.workspace_id()
        path = f"/v2/flows/{quote(validate_flow_id(flow_id), safe='')}"
        call = Call("GET", "/v2/flows/{flow_id}", path, "safe", needs_key=True, params={"workspace_id": workspace})
        return _parse(FlowDetail, await self._requests.send(call, deadline), "flow")

    async def create_flow_session(
        self, flow_id: str, variables: Mapping[str, str] | None = None, *, deadline: float | None = None
    ) -> SessionCreated:
        """Open a session of a published flow, with its variables; invoke and poll it with ``kind="flow"``."""
        workspace = await self.workspace_id()
        body: dict[str, Any] = {"flow_id": validate_flow_id(flow_id)}
        if variables:
            body["variables"] = dict(variables)
        template = "/v2/flows/sessions/from_flow/create"
        # As the assistant's create: a repeat leaves at most an unused session behind.
        call = Call("POST", template, template, "safe", needs_key=True, params={"workspace_id": workspace}, body=body)
        created = _parse(SessionCreated, await self._requests.send(call, deadline), "flow session")
        if not SESSION_ID_PATTERN.fullmatch(created.session_id):
            raise ResponseShapeError("FlowHunt's flow session answer carries a session_id that is not a session id.")
        return created

    async def upload_attachment(
        self, session_id: str, file_name: str, content: bytes, content_type: str, *, deadline: float | None = None
    ) -> Attachment:
        """Attach a file to a flow session; the flow sees it from the next message on."""
        template, path = _session_path("flow", session_id, "attachments")
        files = {"file": (file_name, content, content_type)}
        # A repeated upload would attach the file twice: sent again only when FlowHunt certainly did not get it.
        call = Call("POST", template, path, "once", needs_key=False, files=files)
        return _parse(Attachment, await self._requests.send(call, deadline), "attachment")

    async def resume_hook(
        self,
        session_id: str,
        hook_id: str,
        message: str,
        form_data: Mapping[str, Any] | None = None,
        *,
        deadline: float | None = None,
    ) -> HookAnswer:
        """Answer a waiting hook (a question or an approval). One-shot at FlowHunt, so never sent twice here."""
        template, path = _session_path("flow", session_id, "resume-hook")
        body: dict[str, Any] = {"hook_id": hook_id, "message": message}
        if form_data is not None:
            body["form_data"] = dict(form_data)
        # Hooks are one-shot: a resume FlowHunt may have taken is not sent again, like invoke.
        call = Call("POST", template, path, "once", needs_key=False, body=body)
        return _parse(HookAnswer, await self._requests.send(call, deadline), "resume-hook")

    async def cancel(self, session_id: str, *, deadline: float | None = None) -> str:
        """Stop a flow session's running turn; FlowHunt's status answer."""
        template, path = _session_path("flow", session_id, "cancel")
        body = await self._requests.send(Call("POST", template, path, "safe", needs_key=False), deadline)
        status = body.get("status")
        return status if isinstance(status, str) else ""


_Model = TypeVar("_Model", bound=pydantic.BaseModel)


def _parse(model: type[_Model], body: Any, what: str) -> _Model:
    try:
        return model.model_validate(body)
    except pydantic.ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) or "body" for err in exc.errors()})
        raise ResponseShapeError(
            f"FlowHunt's {what} answer is missing or has bad fields: {', '.join(fields)}."
        ) from None


def parse_events(items: list[Any], *, session_id: str) -> list[RawEvent]:
    """Parse a list of raw events, dropping (and logging) items that are not events at all."""
    events: list[RawEvent] = []
    for item in items:
        if item is UNREADABLE:  # an item nested too deep for json.loads (wire.read_json)
            log.warning("event_dropped", session_id=session_id, reason="nested too deep to read")
            continue
        try:
            events.append(RawEvent.model_validate(item))
        except pydantic.ValidationError:
            log.warning("event_dropped", session_id=session_id, reason="not an event with an id and a timestamp")
    return events
