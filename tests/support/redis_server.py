"""A real ``redis-server`` on a free loopback port, started and stopped by the test (so it can also stop Redis
mid-run and bring it back on the same port).

Tests that need one skip, with the reason, only where the binary is missing and CI is not set: in CI (CI=true),
which installs redis-server in .ci/run, a missing binary fails them instead, so CI never skips them silently.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest
import redis

START_SECONDS = 10.0


def redis_server_binary() -> str:
    """The redis-server to run; skip (outside CI) or fail (in CI) when there is none."""
    found = shutil.which("redis-server")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("redis-server is not installed: .ci/run installs it (apt-get install -y redis-server)")
    pytest.skip("redis-server is not installed (apt-get install -y redis-server); CI installs it and runs this")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process without persistence; ``stop`` and ``start`` again keep its port."""

    def __init__(self, password: str | None = None) -> None:
        self.binary = redis_server_binary()
        self.port = free_port()
        self.password = password  # requirepass: clients must send it
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A plain client, for tests that look at what is stored."""
        return redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, socket_timeout=5, decode_responses=True
        )

    def start(self) -> RedisServer:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        if self.password is not None:
            command += ["--requirepass", self.password]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        until = time.monotonic() + START_SECONDS
        with self.client() as probe:
            while True:
                try:
                    if probe.ping():
                        return self
                except redis.ConnectionError:
                    if self._process.poll() is not None or time.monotonic() > until:
                        self.stop()
                        raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                    time.sleep(0.02)  # a process coming up: nothing to await but its port

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def freeze(self) -> None:
        """Stop the process without closing its port: Redis that accepts but never answers (SIGSTOP)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            self.thaw()  # a frozen process would not take the SIGTERM
        self.stop()
