"""A real ``flow-mcp serve --transport http`` process on loopback, and MCP clients that reach it over HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

START_SECONDS = 30.0


class HttpServer:
    """The server process; every stderr line is kept, so tests can read the logs."""

    def __init__(self, env: dict[str, str], *args: str, open_files: int | None = None) -> None:
        """``open_files`` caps the file descriptors the process may hold (RLIMIT_NOFILE; POSIX only)."""
        launcher = [sys.executable, "-m", "flow_mcp"] if open_files is None else _with_open_files(open_files)
        self._command = [*launcher, "serve", "--transport", "http", "--port", "0", *args]
        self._env = env
        self.lines: list[str] = []
        self.url = ""
        self._listening = threading.Event()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def process(self) -> subprocess.Popen[str]:
        assert self._process is not None, "start() first"
        return self._process

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log lines so far."""
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]

    def start(self) -> HttpServer:
        self._process = subprocess.Popen(
            self._command, env=self._env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._listening.wait(START_SECONDS) or not self.url:
            self.stop(signal.SIGKILL)
            raise RuntimeError(f"flow-mcp did not start listening:\n{self.stderr}")
        return self

    def _read(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for line in self._process.stderr:
            self.lines.append(line)
            if '"server_listening"' in line:
                self.url = json.loads(line)["url"]
                self._listening.set()
        self._listening.set()  # the process ended; start() reports why

    def send(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> tuple[int, str]:
        """Stop the process; its exit code and everything it wrote to stdout."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        # Not communicate(): it would read stderr too, racing the reader thread for the last lines (spans, logs).
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        out = self.process.stdout
        stdout = out.read() if out is not None and not out.closed else ""  # stop() may come twice
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return self.process.returncode, stdout or ""

    def __enter__(self) -> HttpServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _with_open_files(limit: int) -> list[str]:
    # Set in the child before flow_mcp starts: preexec_fn is unsafe in a process that runs threads.
    code = (
        "import resource, runpy, sys; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, resource.getrlimit(resource.RLIMIT_NOFILE)[1])); "
        "runpy.run_module('flow_mcp', run_name='__main__')"
    )
    return [sys.executable, "-c", code]


def auth_headers(token: str | None = None, key: str | None = None) -> dict[str, str]:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if key is not None:
        headers["X-FlowHunt-Api-Key"] = key
    return headers


@asynccontextmanager
async def http_client(
    url: str,
    *,
    token: str | None = None,
    key: str | None = None,
    mode: str = "auto",
    transport: httpx2.AsyncBaseTransport | None = None,
    **options: Any,
) -> AsyncIterator[Client]:
    """An MCP client over streamable HTTP (the SDK's own), sending a bearer token and a FlowHunt key if given;
    ``options`` go to the Client (an elicitation_callback, say)."""
    async with (
        httpx2.AsyncClient(
            headers=auth_headers(token, key), timeout=httpx2.Timeout(30, read=300), transport=transport
        ) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http), mode=mode, **options) as client,
    ):
        yield client


class Replicas(httpx2.AsyncBaseTransport):
    """One client's HTTP requests, each sent to whichever replica ``target`` names: a load balancer in a test."""

    def __init__(self, *urls: str) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self._ports = [httpx2.URL(url).port for url in urls]
        self.target = 0
        self.served: list[int] = []  # which replica got each request

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = self._ports[self.target]
        request.url = request.url.copy_with(port=port)
        request.headers["Host"] = f"127.0.0.1:{port}"
        self.served.append(self.target)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
