"""FlowHuntClient: the only place that speaks HTTP to FlowHunt.

One pooled ``httpx2.AsyncClient`` per instance (the server creates one per process, in its
lifespan). Every failure is translated here, once, into the tree of ``errors.py``. Retries use
jittered exponential backoff, bounded in count and total wait; ``invoke`` is retried only when
FlowHunt certainly did not process it, so a message is never sent twice.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import anyio
import httpx2
import pydantic

from flow_mcp._version import __version__
from flow_mcp.config import Settings
from flow_mcp.errors import (
    APIError,
    ConfigurationError,
    FlowHuntError,
    InvalidArgumentError,
    MissingKeyError,
    RateLimitError,
    ResponseShapeError,
    TransportError,
    error_for_status,
)
from flow_mcp.flowhunt.logger import get_logger
from flow_mcp.flowhunt.ratelimit import RateGate
from flow_mcp.flowhunt.wire import Invocation, RawEvent, SessionCreated

log = get_logger()

SESSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # used with fullmatch: "$" alone admits "\n"
_TIMESTAMP_PATTERN = re.compile(r"[0-9]{1,20}")  # used with fullmatch

MISSING_KEY_HELP = "No FlowHunt API key: set FLOWHUNT_API_KEY, or pass Settings(api_key=...)."

# Which failures may be retried. "safe" calls change nothing (or nothing that matters) when repeated;
# "once" calls (invoke) must not reach FlowHunt twice.
Repeat = Literal["safe", "once"]
_RETRY_STATUSES: dict[Repeat, frozenset[int]] = {
    "safe": frozenset({429, 500, 502, 503, 504}),
    # 429 and 503 are answered before FlowHunt takes the message in; 502/504 may come after it did.
    "once": frozenset({429, 503}),
}


@dataclass(frozen=True)
class _Call:
    method: str
    template: str  # the path with placeholders, as logged
    path: str
    repeat: Repeat
    needs_key: bool
    params: Mapping[str, str] | None = None
    body: Mapping[str, Any] | None = None
    expect: type[list[Any]] | type[dict[str, Any]] = dict  # the JSON type a 2xx body must have


def validate_session_id(session_id: str) -> str:
    """A FlowHunt session id, or InvalidArgumentError saying what one looks like."""
    if not isinstance(session_id, str) or not SESSION_ID_PATTERN.fullmatch(session_id):
        raise InvalidArgumentError(
            "Malformed session_id: it is 1-128 letters, digits, '-' or '_' as returned by create_session or ask."
        )
    return session_id


def _validate_timestamp(timestamp: str) -> str:
    if not isinstance(timestamp, str) or not _TIMESTAMP_PATTERN.fullmatch(timestamp):
        raise InvalidArgumentError("Malformed timestamp: FlowHunt timestamps are epoch milliseconds as digits.")
    return timestamp


class FlowHuntClient:
    """Typed async access to FlowHunt's Flow Assistant V3 API."""

    def __init__(self, settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        self._settings = settings
        self._http = httpx2.AsyncClient(
            base_url=settings.base_url,
            timeout=httpx2.Timeout(settings.timeout),
            transport=transport,
            headers={"User-Agent": f"flow-mcp/{__version__}", "Accept": "application/json"},
            follow_redirects=False,
        )
        self._workspace_id = settings.workspace_id
        self._workspace_lock = anyio.Lock()
        self.gate = RateGate(settings.max_rps)

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
        await self._http.aclose()

    # -- the API ---------------------------------------------------------------------------------

    async def me(self) -> dict[str, Any]:
        """``GET /v2/auth/me``: who the API key belongs to."""
        body: dict[str, Any] = await self._send(_Call("GET", "/v2/auth/me", "/v2/auth/me", "safe", needs_key=True))
        return body

    async def workspace_id(self) -> str:
        """The configured workspace, or the API key's own, found once from ``/v2/auth/me``."""
        if self._workspace_id:
            return self._workspace_id
        async with self._workspace_lock:
            if not self._workspace_id:
                found = (await self.me()).get("api_key_workspace_id")
                if not isinstance(found, str) or not found.strip():
                    raise ConfigurationError(
                        "FlowHunt did not say which workspace the API key belongs to: set FLOWHUNT_WORKSPACE_ID."
                    )
                self._workspace_id = found.strip()
                log.info("workspace_discovered", workspace_id=self._workspace_id)
        return self._workspace_id

    async def create_session(
        self, context_flow_id: str | None = None, start_with_welcome_message: bool = False
    ) -> SessionCreated:
        """Create an assistant session in the workspace."""
        workspace = await self.workspace_id()
        body: dict[str, Any] = {"start_with_welcome_message": start_with_welcome_message}
        if context_flow_id is not None:
            body["context_flow_id"] = context_flow_id
        # A repeated create leaves at most an unused session behind, so it is retried like a read.
        call = _Call(
            "POST",
            "/v3/flow-assistants/create",
            "/v3/flow-assistants/create",
            "safe",
            needs_key=True,
            params={"workspace_id": workspace},
            body=body,
        )
        created = _parse(SessionCreated, await self._send(call), "create")
        if not SESSION_ID_PATTERN.fullmatch(created.session_id):
            raise ResponseShapeError("FlowHunt's create answer carries a session_id that is not a session id.")
        return created

    async def invoke(self, session_id: str, message: str, ai_model: str | None = None) -> Invocation:
        """Send a message; FlowHunt answers at once and the turn's events are then polled."""
        sid = validate_session_id(session_id)
        body: dict[str, Any] = {"message": message}
        if ai_model is not None:
            body["ai_model"] = ai_model
        path = f"/v3/flow-assistants/{quote(sid, safe='')}/invoke"
        call = _Call("POST", "/v3/flow-assistants/{session_id}/invoke", path, "once", needs_key=False, body=body)
        return _parse(Invocation, await self._send(call), "invoke")

    async def poll(self, session_id: str, from_timestamp: str) -> list[RawEvent]:
        """Events of the session from ``from_timestamp`` on (FlowHunt's reading of the bound is unknown)."""
        sid = validate_session_id(session_id)
        stamp = _validate_timestamp(from_timestamp)
        path = f"/v3/flow-assistants/{quote(sid, safe='')}/invocation_response/{quote(stamp, safe='')}"
        template = "/v3/flow-assistants/{session_id}/invocation_response/{from_timestamp}"
        body = await self._send(_Call("POST", template, path, "safe", needs_key=False, expect=list))
        return parse_events(body, session_id=sid)

    async def resume_hook(
        self, session_id: str, hook_id: str, message: str, form_data: Mapping[str, Any] | None = None
    ) -> str:
        """Answer a hook the session's turn waits on; FlowHunt's status (``resumed``, ``already_received``, ...)."""
        sid = validate_session_id(session_id)
        body: dict[str, Any] = {"hook_id": hook_id, "message": message}
        if form_data is not None:
            body["form_data"] = dict(form_data)
        path = f"/v2/flows/sessions/{quote(sid, safe='')}/resume-hook"
        # Hooks are one-shot: a resume FlowHunt may have taken is not sent again, like invoke.
        call = _Call("POST", "/v2/flows/sessions/{session_id}/resume-hook", path, "once", needs_key=False, body=body)
        status = (await self._send(call)).get("status")
        if not isinstance(status, str):
            raise ResponseShapeError("FlowHunt's resume-hook answer carries no status.")
        return status

    # -- HTTP, retries and error mapping ---------------------------------------------------------

    async def _send(self, call: _Call) -> Any:
        settings = self._settings
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(call, attempt)
            except FlowHuntError as error:
                delay = self._retry_delay(call, error, attempt)
                waited = time.monotonic() - started
                if delay is None or attempt > settings.max_retries or waited + delay > settings.retry_max_seconds:
                    raise
                log.warning(
                    "flowhunt_retry", path=call.template, attempt=attempt, delay_s=round(delay, 3), reason=str(error)
                )
                await anyio.sleep(delay)

    async def _attempt(self, call: _Call, attempt: int) -> Any:
        await self.gate.wait()
        started = time.monotonic()
        status: int | None = None
        empty = False
        try:
            response = await self._http.request(
                call.method, call.path, params=call.params, json=call.body, headers=self._auth_headers(call.needs_key)
            )
            status = response.status_code
            body = self._decode(call, response)
            empty = body == []
            return body
        except httpx2.TransportError as exc:
            raise _transport_error(exc) from None
        except httpx2.DecodingError:
            # A body that lies about its Content-Encoding: FlowHunt answered, with something unreadable.
            raise ResponseShapeError("FlowHunt's answer could not be decoded (bad Content-Encoding).") from None
        finally:
            duration_ms = round((time.monotonic() - started) * 1000, 1)
            # A poll that found nothing new is the commonest request by far: at info it would drown the rest.
            (log.debug if empty else log.info)(
                "flowhunt_request",
                method=call.method,
                path=call.template,
                status=status,
                attempt=attempt,
                duration_ms=duration_ms,
            )

    def _auth_headers(self, needs_key: bool) -> dict[str, str]:
        key = self._settings.api_key.get_secret_value() if self._settings.api_key else ""
        if not key:
            if needs_key:
                raise MissingKeyError(MISSING_KEY_HELP)
            return {}
        if self._settings.auth_header == "api-key":
            return {"Api-Key": key}
        return {"Authorization": f"Bearer {key}"}

    def _decode(self, call: _Call, response: httpx2.Response) -> Any:
        try:
            body = json.loads(response.content) if response.content else None
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: JSON nested beyond reason
            body = _UNREADABLE
        if response.is_success:
            if body is _UNREADABLE:
                raise ResponseShapeError(f"FlowHunt answered {response.status_code} with a body that is not JSON.")
            if not isinstance(body, call.expect):
                wanted = "a list" if call.expect is list else "an object"
                raise ResponseShapeError(f"FlowHunt's answer to {call.template} was not {wanted}.")
            return body
        retry_after = _retry_after(response.headers.get("Retry-After"))
        if response.status_code == 429:
            # The limit is the key's, so every turn of this client waits, not only the one that got the 429.
            self.gate.pause(retry_after if retry_after is not None else 1.0)
        error = error_for_status(response.status_code, body, retry_after)
        error.detail = self._scrub(error.detail)
        error.args = (self._scrub(str(error)),)
        raise error

    def _scrub(self, text: str) -> str:
        # FlowHunt might echo the key in an error detail; it must not travel on.
        key = self._settings.api_key.get_secret_value() if self._settings.api_key else ""
        return text.replace(key, "[redacted]") if key else text

    def _retry_delay(self, call: _Call, error: FlowHuntError, attempt: int) -> float | None:
        if isinstance(error, TransportError):
            retryable = call.repeat == "safe" or not error.request_sent
        elif isinstance(error, ResponseShapeError):
            retryable = call.repeat == "safe"
        elif isinstance(error, APIError):
            retryable = error.status_code in _RETRY_STATUSES[call.repeat]
        else:
            retryable = False
        if not retryable:
            return None
        if isinstance(error, RateLimitError):
            return self.gate.paused_for  # the shared pause already holds the next attempt back
        ceiling: float = min(5.0, 0.25 * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # equal jitter: spread out, never zero


_UNREADABLE = object()


def _transport_error(exc: httpx2.TransportError) -> TransportError:
    # Only a failed connect (or no free pooled connection) proves the request never left.
    not_sent = isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout | httpx2.PoolTimeout)
    if isinstance(exc, httpx2.TimeoutException):
        what = "timed out (FLOWHUNT_TIMEOUT)"
    elif not_sent:
        what = "could not be reached"
    else:
        what = "dropped the connection"
    return TransportError(f"FlowHunt {what}: {type(exc).__name__}.", request_sent=not not_sent)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(seconds, 0.0), 3600.0) if seconds == seconds else None


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
        try:
            events.append(RawEvent.model_validate(item))
        except pydantic.ValidationError:
            log.warning("event_dropped", session_id=session_id, reason="not an event with an id and a timestamp")
    return events
