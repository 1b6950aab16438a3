"""ASGI middleware that logs every API request and injects the faults the config asks for.

Every request is logged with its call kind (the name of the route it matches, see config.CALL_KINDS). Calls whose
kind the `out_of_credits` knob lists are answered 402 before anything else (no side effect). Random faults apply
to the /v3 and /v2/flows endpoints. 429 and 503 are answered before the request reaches the app (no side
effect, safe to retry). 500, reset, truncated, wrong_shape and the hostile ones (surrogate, bad_utf8, oversized,
drip) are applied after the app has run, so the invoke's turn really starts (and a resume-hook really resumes): a
client that retries on those will visibly send twice. A stall sleeps and then lets the request through, which is
what a server does when the client has already given up.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Sequence
from email.utils import formatdate

import anyio
import anyio.lowlevel
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flow_mcp.sandbox.sessions import JSONDict
from flow_mcp.sandbox.state import SandboxState

logger = logging.getLogger("flow_mcp.sandbox")

FAULT_SCOPE_KEY = "flow_mcp.sandbox.fault"
# The request's log entry, for handlers that add details to it (resume-hook notes the hook id and the outcome).
ENTRY_SCOPE_KEY = "flow_mcp.sandbox.entry"
CONTROL_PREFIX = "/_sandbox/"
_FAULTY_PREFIXES = ("/v3/", "/v2/flows/")
OUT_OF_CREDITS = "Out of credits: top up the workspace's credits in FlowHunt"
_BEFORE = frozenset({"429", "503"})
_AFTER = frozenset({"500", "reset", "truncated", "wrong_shape", "surrogate", "bad_utf8", "oversized", "drip"})
_HOSTILE_RETRY_AFTER = ("3600", "86400", "1e400", "-5", "nan", "soon", "Fri, 31 Dec 9999 23:59:59 GMT", "")
# Texts a person reads; ids, labels and tool names are left whole (a client pairs and deduplicates by them).
_TEXT_KEYS = frozenset({"message", "detail", "msg", "content", "loading_desc", "prompt_message", "tool_response"})
_BAD_BYTES = "\ue000"  # stands for the invalid UTF-8 until the body is encoded


class FaultMiddleware:
    """Wraps the sandbox app: request log, latency, and fault injection."""

    def __init__(self, app: ASGIApp, state: SandboxState, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.state = state
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or path.encode()
        query = scope.get("query_string", b"").decode("latin-1")
        kind = self._kind(scope)
        entry = self.state.record_request(scope["method"], raw_path.decode("latin-1"), query, kind)
        scope[ENTRY_SCOPE_KEY] = entry
        config = self.state.config
        if config.latency_ms > 0:
            await anyio.sleep(config.latency_ms / 1000)
        if kind is not None and config.out_of_credits_for(kind):
            self.state.record_fault("402", entry)
            self.state.set_status(entry, 402)
            await _send_json(send, 402, {"detail": OUT_OF_CREDITS}, [])
            return
        faulty = path.startswith(_FAULTY_PREFIXES) and config.fault_only in path
        fault = self.state.draw_fault() if faulty else None
        if fault is not None:
            logger.info("sandbox fault %s on %s %s", fault, scope["method"], path)
        if fault in _BEFORE:
            self.state.record_fault(str(fault), entry)
            await self._refuse(str(fault), entry, send)
            return
        if fault == "stall":
            self.state.record_fault(fault, entry)
            await anyio.sleep(config.stall_s)
        scope[FAULT_SCOPE_KEY] = fault
        if fault in _AFTER:
            await self._after(str(fault), entry, scope, receive, send)
            return

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.state.set_status(entry, message["status"])
            await send(message)

        await self.app(scope, receive, send_and_note)

    def _kind(self, scope: Scope) -> str | None:
        """The name of the route the request matches in full (path and method), or None."""
        for route in self.routes:
            if route.matches(scope)[0] is Match.FULL:
                return getattr(route, "name", None)
        return None

    async def _refuse(self, fault: str, entry: JSONDict, send: Send) -> None:
        if fault == "429":
            body: JSONDict = {"detail": "Too Many Requests"}
            self.state.set_status(entry, 429)  # noted before sending: a client may read the log right after
            await _send_json(send, 429, body, [(b"retry-after", self._retry_after().encode())])
        else:
            self.state.set_status(entry, 503)
            await _send_json(send, 503, {"detail": "Service Unavailable"}, [])

    def _retry_after(self) -> str:
        if self.state.config.hostile_retry_after:
            return _HOSTILE_RETRY_AFTER[self.state.choice(len(_HOSTILE_RETRY_AFTER))]
        seconds = self.state.config.retry_after_s
        # Both forms are legal (RFC 9110); clients must read either.
        if self.state.choice(2) == 0:
            return str(max(0, round(seconds)))
        return formatdate(time.time() + seconds, usegmt=True)

    async def _after(self, fault: str, entry: JSONDict, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        status = int(start.get("status", 500))
        body = b"".join(chunks)
        if fault in ("truncated", "wrong_shape") and not 200 <= status < 300:
            # Mangling an error would turn it into a success; pass the error through and inject nothing.
            self.state.set_status(entry, status)
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        self.state.record_fault(fault, entry)
        if fault == "500":
            self.state.set_status(entry, 500)
            await _send_raw(send, 500, b"Internal Server Error", b"text/plain; charset=utf-8")
        elif fault == "reset":
            await self._reset(start, body, send)
            self.state.set_status(entry, status)
        elif fault == "truncated":
            cut = body[: max(1, len(body) // 2)]
            self.state.set_status(entry, status)
            await _send_raw(send, status, cut, b"application/json")
        elif fault == "wrong_shape":
            self.state.set_status(entry, status)
            await _send_json(send, status, self._wrong_shape(body), [])
        elif fault in ("surrogate", "bad_utf8"):
            self.state.set_status(entry, status)
            await _send_raw(send, status, _poisoned(body, fault), b"application/json")
        elif fault == "oversized":
            self.state.set_status(entry, status)
            await self._oversized(status, body, send)
        else:
            self.state.set_status(entry, status)
            await self._drip(start, body, send)

    async def _oversized(self, status: int, body: bytes, send: Send) -> None:
        # Whitespace after JSON is still JSON: only a client that stops reading is safe from this answer.
        left = int(self.state.config.oversized_bytes)
        packer = zlib.compressobj(wbits=zlib.MAX_WBITS | 16) if self.state.choice(2) else None
        headers = [(b"content-type", b"application/json")] + ([(b"content-encoding", b"gzip")] if packer else [])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        piece, blank = body, b" " * 65536
        while True:
            await send(
                {"type": "http.response.body", "body": packer.compress(piece) if packer else piece, "more_body": True}
            )
            await anyio.lowlevel.checkpoint()  # a client that hung up is noticed, and the sending stops
            if left <= 0:
                break
            piece, left = blank[:left], left - len(blank)
        await send({"type": "http.response.body", "body": packer.flush() if packer else b""})

    async def _drip(self, start: Message, body: bytes, send: Send) -> None:
        pieces = max(1, min(len(body), 50))
        size = -(-len(body) // pieces)
        await send(start)
        for index in range(pieces):
            await anyio.sleep(self.state.config.drip_s / pieces)
            await send(
                {"type": "http.response.body", "body": body[index * size : (index + 1) * size], "more_body": True}
            )
        await send({"type": "http.response.body", "body": b""})

    async def _reset(self, start: Message, body: bytes, send: Send) -> None:
        # Announce the full length, send half, and return: uvicorn then closes the connection mid-body,
        # which the client sees as a protocol error (the "connection reset" of a flaky proxy).
        await send(start)
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})

    def _wrong_shape(self, body: bytes) -> object:
        try:
            original = json.loads(body)
        except ValueError:
            original = None
        if isinstance(original, list):
            return [{"events": original}, [1, 2, 3]][self.state.choice(2)]
        return [[1, 2, 3], {"unexpected": True}][self.state.choice(2)]


def _poisoned(body: bytes, fault: str) -> bytes:
    """``body`` (JSON) with a lone surrogate or invalid UTF-8 after each text a person reads."""
    try:
        value = json.loads(body)
    except ValueError:
        return body
    if fault == "surrogate":
        return json.dumps(_mark_texts(value, "\ud800")).encode()  # ASCII: the surrogate travels as its escape
    marked = json.dumps(_mark_texts(value, _BAD_BYTES), ensure_ascii=False).encode()
    return marked.replace(_BAD_BYTES.encode(), b"\xff")


def _mark_texts(value: object, mark: str) -> object:
    if isinstance(value, list):
        return [_mark_texts(item, mark) for item in value]
    if not isinstance(value, dict) or value.get("event_type") == "human":
        return value
    return {
        key: item + mark if key in _TEXT_KEYS and isinstance(item, str) else _mark_texts(item, mark)
        for key, item in value.items()
    }


async def _send_json(send: Send, status: int, body: object, headers: list[tuple[bytes, bytes]]) -> None:
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    await _send_raw(send, status, data, b"application/json", headers)


async def _send_raw(
    send: Send, status: int, body: bytes, content_type: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    all_headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})
