"""A request to FlowHunt, sent: one pooled connection, the key's request budget, retries, limits, errors mapped once.

``FlowHuntClient`` (client.py) says what to ask; a ``Requester`` asks it. Every failure is translated here, once,
into the tree of ``errors.py``. Retries use jittered exponential backoff, bounded in count and total wait; a
``"once"`` call (invoke, an upload, a hook's answer) is sent again only when FlowHunt certainly did not get it.
FlowHunt is not trusted: a request gets FLOWHUNT_TIMEOUT from connecting to its last byte, a body is read only up
to FLOW_MCP_MAX_RESPONSE_BYTES, and a Retry-After pauses the key for at most FLOW_MCP_MAX_RETRY_AFTER.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.to_thread
import httpx2

from flow_mcp import telemetry
from flow_mcp._version import __version__
from flow_mcp.config import KEY_NOT_ASCII, Settings, is_sendable_key
from flow_mcp.errors import (
    APIError,
    ConfigurationError,
    FlowHuntError,
    MissingKeyError,
    RateLimitError,
    ResponseShapeError,
    ResponseTooLargeError,
    TransportError,
    error_for_status,
)
from flow_mcp.flowhunt.logger import get_logger
from flow_mcp.flowhunt.ratelimit import RateGate
from flow_mcp.flowhunt.wire import UNREADABLE, event_identity, read_json
from flow_mcp.redaction import Redactor

log = get_logger()

MISSING_KEY_HELP = "No FlowHunt API key: set FLOWHUNT_API_KEY, or pass Settings(api_key=...)."

# Larger bodies are parsed in a thread: past this, parsing takes ~10-20 ms.
_PARSE_OFF_LOOP_BYTES = 1024 * 1024

# Which failures may be retried. "safe" calls change nothing (or nothing that matters) when repeated;
# "once" calls (invoke) must not reach FlowHunt twice.
Repeat = Literal["safe", "once"]
Seen = Callable[[str, int], bool]
"""Whether the caller has an event already, by its id and timestamp (``Cursor.delivered``)."""
_RETRY_STATUSES: dict[Repeat, frozenset[int]] = {
    "safe": frozenset({429, 500, 502, 503, 504}),
    # 429 and 503 are answered before FlowHunt takes the message in; 502/504 may come after it did.
    "once": frozenset({429, 503}),
}


@dataclass(frozen=True)
class Call:
    """One request as the client asks it."""

    method: str
    template: str  # the path with placeholders, as logged
    path: str
    repeat: Repeat
    needs_key: bool
    params: Mapping[str, str] | None = None
    body: Mapping[str, Any] | None = None
    files: Mapping[str, tuple[str, bytes, str]] | None = None  # multipart: field -> (file name, content, type)
    expect: type[list[Any]] | type[dict[str, Any]] = dict  # the JSON type a 2xx body must have
    events: bool = False  # a list of events: one holding nothing that looks like an event is a shape error
    seen: Seen | None = None  # events of the list that the caller has (left out before they are read further)


class Requester:
    """Sends the client's calls: its pooled HTTP client, the key's budget (``gate``), retries and error mapping."""

    def __init__(self, settings: Settings, transport: httpx2.AsyncBaseTransport | None) -> None:
        self._settings = settings
        self._transport = transport
        self._http: httpx2.AsyncClient | None = None  # made by the first request (_pool)
        self._closed = False
        # Requests go to absolute URLs: httpx parses a relative one twice (itself, then merged with the base).
        self._url_prefix = settings.base_url.rstrip("/")  # paths start with "/"
        self._redactor = Redactor([settings.api_key.get_secret_value()] if settings.api_key else [])
        self.gate = RateGate(settings.max_rps)

    async def aclose(self) -> None:
        self._closed = True
        if self._http is not None:
            await self._http.aclose()

    def _pool(self) -> httpx2.AsyncClient:
        """The pooled HTTP client, made at the first request rather than with this object: making it loads the
        HTTP/TLS stack and the CA certificates (some 40 ms), which a server listing its tools does not need."""
        if self._http is None:
            if self._closed:
                raise RuntimeError("Cannot send a request, as the client has been closed.")  # as httpx2's own
            self._http = httpx2.AsyncClient(
                base_url=self._settings.base_url,
                timeout=httpx2.Timeout(self._settings.timeout),
                transport=self._transport,
                headers={"User-Agent": f"flow-mcp/{__version__}", "Accept": "application/json"},
                follow_redirects=False,
            )
        return self._http

    async def send(self, call: Call, deadline: float | None = None) -> Any:
        """The body of FlowHunt's answer to ``call``, as JSON; a ``FlowHuntError`` once retries are spent."""
        settings = self._settings
        # Every wait (a retry's delay, a 429's pause) ends by then, or is not begun: the call fails at once.
        give_up = time.monotonic() + settings.retry_max_seconds
        if deadline is not None:
            give_up = min(give_up, deadline)
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._take_turn(give_up, deadline)
                with telemetry.span(f"{call.method} {call.template}", self._span_attrs(call, attempt), kind="client"):
                    return await self._attempt(call, attempt, deadline)
            except FlowHuntError as error:
                delay = self._retry_delay(call, error, attempt)
                if delay is None or attempt > settings.max_retries or time.monotonic() + delay > give_up:
                    raise
                reason = type(error).__name__
                telemetry.count(telemetry.RETRIES, 1, {"url.template": call.template, "error.type": reason})
                log.warning(
                    "flowhunt_retry", path=call.template, attempt=attempt, delay_s=round(delay, 3), reason=str(error)
                )
                await anyio.sleep(delay)

    def _span_attrs(self, call: Call, attempt: int) -> telemetry.Attributes:
        """A request's span: what was asked and where, never the path's ids, a query, a body or a header."""
        return {
            "http.request.method": call.method,
            "url.template": call.template,
            "server.address": self._pool().base_url.host,
            "flow_mcp.attempt": attempt,
            "http.request.resend_count": attempt - 1 if attempt > 1 else None,
        }

    async def _take_turn(self, give_up: float, deadline: float | None) -> None:
        """Wait for the key's request budget; fail at once when a 429's pause outlasts the call's patience."""
        if self.gate.try_pass():
            return  # no wait, so no deadline to watch
        pause = self.gate.paused_for
        if pause > 0 and time.monotonic() + pause > give_up:
            raise RateLimitError(429, "the API key is paused by an earlier 429", retry_after=pause)
        with anyio.move_on_after(math.inf if deadline is None else deadline - time.monotonic()):
            await self.gate.wait()
            return
        pause = self.gate.paused_for
        if pause > 0:
            raise RateLimitError(429, "the API key is paused by an earlier 429", retry_after=pause)
        raise TransportError("The call's time ran out while it waited for its turn.", request_sent=False)

    async def _attempt(self, call: Call, attempt: int, deadline: float | None) -> Any:
        started = time.monotonic()
        # The whole request, connect to last byte, within FLOWHUNT_TIMEOUT (httpx2 bounds each read only)
        # and within the call's own deadline.
        limit = self._settings.timeout if deadline is None else min(self._settings.timeout, deadline - started)
        status: int | None = None
        empty = False
        try:
            if limit <= 0:
                raise TransportError("The call's time ran out before FlowHunt was asked.", request_sent=False)
            fetched = None
            with anyio.move_on_after(limit):
                fetched = await self._fetch(call)
            if fetched is None:
                which = "FLOWHUNT_TIMEOUT" if deadline is None else "FLOWHUNT_TIMEOUT, or the call's own time limit"
                raise TransportError(
                    f"FlowHunt did not answer in full within {limit:.3g} s ({which}).", request_sent=True
                )
            response, data = fetched
            status = response.status_code
            telemetry.current().set({"http.response.status_code": status})
            body = await self._decode(call, response, data)
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

    async def _fetch(self, call: Call) -> tuple[httpx2.Response, bytes]:
        """The response and its decoded body, read as it streams in and abandoned past the size limit."""
        limit = self._settings.max_response_bytes
        headers = self._auth_headers(call.needs_key)
        url = self._url_prefix + call.path
        async with self._pool().stream(
            call.method, url, params=call.params, json=call.body, files=call.files, headers=headers
        ) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():  # decompressed, in bounded pieces
                size += len(chunk)
                if size > limit:
                    raise ResponseTooLargeError(
                        f"FlowHunt's answer to {call.template} passed FLOW_MCP_MAX_RESPONSE_BYTES ({limit} bytes) "
                        "and was not read further; raise that limit if the answer really is that large."
                    )
                chunks.append(chunk)
        return response, b"".join(chunks)

    def _auth_headers(self, needs_key: bool) -> dict[str, str]:
        key = self._settings.api_key.get_secret_value() if self._settings.api_key else ""
        if not key:
            if needs_key:
                raise MissingKeyError(MISSING_KEY_HELP)
            return {}
        if not is_sendable_key(key):  # Settings refuses one; settings copied with a key given later are not checked
            raise ConfigurationError(f"The FlowHunt API key {KEY_NOT_ASCII}.")
        if self._settings.auth_header == "api-key":
            return {"Api-Key": key}
        return {"Authorization": f"Bearer {key}"}

    async def _decode(self, call: Call, response: httpx2.Response, data: bytes) -> Any:
        skip = _Skip(call.seen) if call.seen is not None and response.is_success else None
        if len(data) > _PARSE_OFF_LOOP_BYTES:
            body = await anyio.to_thread.run_sync(read_json, data, self._redactor.scrub, skip)
        else:
            body = read_json(data, self._redactor.scrub, skip)
        if response.is_success:
            if body is None and call.expect is list:
                return []  # a 204, or an empty 200, to a poll: nothing new
            if body is UNREADABLE:
                raise ResponseShapeError(f"FlowHunt answered {response.status_code} with a body that is not JSON.")
            if not isinstance(body, call.expect):
                wanted = "a list" if call.expect is list else "an object"
                raise ResponseShapeError(f"FlowHunt's answer to {call.template} was not {wanted}.")
            held_events = skip is not None and skip.count > 0
            if call.events and body and not held_events and not any(_looks_like_event(item) for item in body):
                # Taken as "nothing new", a list of junk could close a turn's settle window early; retried instead.
                # One bad item among events is dropped alone (parse_events).
                raise ResponseShapeError(f"FlowHunt's answer to {call.template} holds no events.")
            return body
        retry_after = _retry_after(response.headers.get("Retry-After"))
        if retry_after is not None:
            retry_after = min(retry_after, self._settings.max_retry_after)
        if response.status_code == 429:
            telemetry.count(telemetry.RATE_LIMITED, 1, {"url.template": call.template})
            # The limit is the key's, so every turn of this client waits, not only the one that got the 429.
            await self.gate.pause(retry_after if retry_after is not None else 1.0)
        # The body's strings are already scrubbed, so the detail is cut only after the key was taken out.
        location = self._shown_url(response.headers.get("Location")) if response.is_redirect else None
        raise error_for_status(response.status_code, None if body is UNREADABLE else body, retry_after, location)

    def _shown_url(self, url: str | None) -> str | None:
        """A URL from FlowHunt fit for an error text: no credentials, query or fragment, the key scrubbed, short."""
        if not url:
            return None
        try:
            parts = urlsplit(url.strip())
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
        except ValueError:  # a port that is not a number, a bracket left open
            return None
        netloc = f"{host}{port}"
        shown = urlunsplit((parts.scheme, netloc, parts.path, "", "")) if netloc else parts.path
        shown = self._redactor.scrub(shown)
        return shown if len(shown) <= 200 else shown[:200] + "…"

    def _retry_delay(self, call: Call, error: FlowHuntError, attempt: int) -> float | None:
        if isinstance(error, TransportError):
            retryable = call.repeat == "safe" or not error.request_sent
        elif isinstance(error, ResponseTooLargeError):
            retryable = False  # the same answer would come again, as large
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
    return max(seconds, 0.0) if seconds == seconds else None  # NaN: no advice


class _Skip:
    """The events of a poll's answer that the caller has already, counted (they still show the answer held events)."""

    def __init__(self, seen: Seen) -> None:
        self._seen = seen
        self.count = 0

    def __call__(self, item: Any) -> bool:
        identity = event_identity(item)
        if identity is None or not self._seen(*identity):
            return False
        self.count += 1
        return True


def _looks_like_event(item: Any) -> bool:
    return isinstance(item, dict) and "event_id" in item
