"""Serving the sandbox: in a background thread (tests, demo, `serve --sandbox`) or blocking (`flow-mcp sandbox`).

The background server may share its process with an MCP stdio server, whose protocol owns stdout. So uvicorn
is started with `log_config=None` (it installs no handlers, in particular not its stdout access handler) and
`access_log=False`; anything the sandbox logs goes through `logging.getLogger("flow_mcp.sandbox")`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import anyio.to_thread
import uvicorn
from starlette.types import ASGIApp

from flow_mcp.sandbox.app import build_app
from flow_mcp.sandbox.config import SandboxConfig
from flow_mcp.sandbox.state import SandboxState

logger = logging.getLogger("flow_mcp.sandbox")

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0


def quiet_uvicorn_config(app: ASGIApp, host: str = "127.0.0.1", port: int = 0, **overrides: Any) -> uvicorn.Config:
    """uvicorn for a simulated server in a thread: our logging, h11, no lifespan, and a quick stop."""
    options: dict[str, Any] = {
        "log_config": None,
        "access_log": False,
        "lifespan": "off",
        "http": "h11",
        "ws": "none",
        "loop": "asyncio",
        # A stalled request must not hold shutdown hostage for `stall_s`.
        "timeout_graceful_shutdown": 1,
        "server_header": False,
    }
    return uvicorn.Config(app, host=host, port=port, **(options | overrides))


def _uvicorn_config(state: SandboxState, host: str, port: int) -> uvicorn.Config:
    return quiet_uvicorn_config(build_app(state=state), host, port)


class SandboxServer:
    """A sandbox on 127.0.0.1 (a free port) in a background thread; use with `with` or `async with`."""

    def __init__(self, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or SandboxConfig()
        self.state = SandboxState(self.config)
        self.host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def port(self) -> int:
        """The port it listens on (known once started)."""
        if self._socket is None:
            raise RuntimeError("the sandbox is not running")
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321 (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Start serving and return once the socket accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the sandbox is already running")
        # Binding here, not in uvicorn, gives the port before the thread starts and surfaces bind errors here.
        # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on such sockets, and without it every
        # response (headers and body are two writes) waits ~40 ms on the client's delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        self._socket = sock
        server = uvicorn.Server(_uvicorn_config(self.state, self.host, self._port))
        self._server = server
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="flow-mcp-sandbox", daemon=True)
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.005)
        logger.info("sandbox listening on %s", self.url)

    def stop(self) -> None:
        """Stop serving; open connections get about a second to finish."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT_S)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(_STOP_TIMEOUT_S)
        if self._socket is not None:
            self._socket.close()
        self._server = None
        self._thread = None
        self._socket = None

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> SandboxServer:
        await anyio.to_thread.run_sync(self.start)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await anyio.to_thread.run_sync(self.stop)


def run_sandbox(
    host: str = "127.0.0.1",
    port: int = 8765,
    config: SandboxConfig | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the sandbox until interrupted (Ctrl-C); `on_ready` receives the base URL once it listens."""
    server = SandboxServer(config or SandboxConfig.from_env(), host=host, port=port)
    stop = threading.Event()
    with server:
        if on_ready is not None:
            on_ready(server.url)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            logger.info("sandbox interrupted, stopping")
