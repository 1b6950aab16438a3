"""A tiny scripted stand-in for FlowHunt: each endpoint answers whatever bytes, status and headers a test sets.

Unlike the sandbox it simulates nothing: it exists to feed flow_mcp responses no real server would send
(garbage JSON, invalid UTF-8, lone surrogates, truncated, oversized, gzip-bombed or dripping bodies, odd statuses
and Retry-After values). Served by uvicorn on 127.0.0.1 in a background thread, with `log_config=None` and
`access_log=False` so nothing is written to stdout.
"""

from __future__ import annotations

import socket
import threading
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

import anyio
import anyio.lowlevel
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from flow_mcp.sandbox.runner import quiet_uvicorn_config

Endpoint = Literal["me", "create", "invoke", "poll"]


@dataclass(frozen=True)
class Scripted:
    """One canned answer: status, raw body bytes (sent as is) and extra headers.

    ``pad`` bytes of JSON whitespace follow the body (still valid JSON, however long); ``gzip`` compresses the
    whole as it streams (a gzip bomb when ``pad`` is large); ``drip_s`` sleeps between pieces of ``piece`` bytes,
    so every read succeeds while the whole takes as long as the test likes.
    """

    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    pad: int = 0
    gzip: bool = False
    drip_s: float = 0.0
    piece: int = 1

    @property
    def streams(self) -> bool:
        return bool(self.pad or self.gzip or self.drip_s)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as sent, piece by piece."""
        packer = zlib.compressobj(wbits=zlib.MAX_WBITS | 16) if self.gzip else None
        for plain in self._plain():
            data = packer.compress(plain) if packer else plain
            if not self.drip_s:
                yield data
                await anyio.lowlevel.checkpoint()  # lets the server see a client that hung up: an endless body ends
                continue
            for at in range(0, len(data), self.piece):
                await anyio.sleep(self.drip_s)
                yield data[at : at + self.piece]
        if packer:
            yield packer.flush()

    def _plain(self) -> Iterator[bytes]:
        yield self.body
        left, blank = self.pad, b" " * 65536
        while left > 0:
            yield blank[: min(left, len(blank))]
            left -= len(blank)


DEFAULTS: dict[Endpoint, Scripted] = {
    "me": Scripted(200, b'{"api_key_workspace_id": "ws-upstream"}'),
    "create": Scripted(200, b'{"session_id": "sess-1", "created_at": "1"}'),
    "invoke": Scripted(200, b'{"message_id": "m-1", "created_at": "1000", "cached_events": []}'),
    "poll": Scripted(200, b"[]"),
}


class Upstream:
    """A scripted upstream on a free loopback port; use with `with`. Set answers with `script()`."""

    def __init__(self) -> None:
        self._answers: dict[Endpoint, Scripted] = dict(DEFAULTS)
        self._paths: list[str] = []
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        assert self._socket is not None, "the upstream is not running"
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def script(self, **answers: Scripted) -> None:
        """Replace the answers of the named endpoints (me, create, invoke, poll); the others keep theirs."""
        with self._lock:
            for name, answer in answers.items():
                assert name in DEFAULTS, name
                self._answers[name] = answer  # type: ignore[index]

    def reset(self) -> None:
        with self._lock:
            self._answers = dict(DEFAULTS)

    def paths(self) -> list[str]:
        """Every request path received so far, raw (percent-encoding preserved)."""
        with self._lock:
            return list(self._paths)

    def _app(self) -> Starlette:
        def answer(name: Endpoint) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                raw_path = request.scope.get("raw_path") or request.url.path.encode()
                with self._lock:
                    self._paths.append(raw_path.decode("latin-1"))
                    scripted = self._answers[name]
                if scripted.streams:
                    headers = {**scripted.headers, **({"Content-Encoding": "gzip"} if scripted.gzip else {})}
                    return StreamingResponse(scripted.chunks(), status_code=scripted.status, headers=headers)
                # Response(bytes) sends the body untouched; no media type, so no charset is added.
                return Response(scripted.body, status_code=scripted.status, headers=scripted.headers)

            return endpoint

        return Starlette(
            routes=[
                Route("/v2/auth/me", answer("me"), methods=["GET"]),
                Route("/v3/flow-assistants/create", answer("create"), methods=["POST"]),
                Route("/v3/flow-assistants/{sid}/invoke", answer("invoke"), methods=["POST"]),
                Route("/v3/flow-assistants/{sid}/invocation_response/{stamp}", answer("poll"), methods=["POST"]),
            ]
        )

    def __enter__(self) -> Upstream:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY, see SandboxServer
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._socket = sock
        self._server = uvicorn.Server(quiet_uvicorn_config(self._app(), date_header=False))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fuzz-upstream", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("the scripted upstream did not start")
            time.sleep(0.005)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(5)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
