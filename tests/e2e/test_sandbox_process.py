"""The sandbox in a process of its own: in a thread or blocking, it writes nothing to stdout."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx2

from ..support.servers import ROOT

KEY = "fh-sandbox-key"


_SERVE_AND_REQUEST = """
import httpx2
from flow_mcp.sandbox import SandboxConfig, SandboxServer
with SandboxServer(SandboxConfig(pacing=0, seed=1)) as server:
    with httpx2.Client(base_url=server.url, headers={"Api-Key": "fh-sandbox-key"}) as http:
        sid = http.post("/v3/flow-assistants/create", params={"workspace_id": "ws-sandbox"}).json()["session_id"]
        server.state.update_config({"rate_500": 0.3, "rate_reset": 0.3})
        for path in ("/nope", f"/v3/flow-assistants/{sid}/invocation_response/0") * 5:
            try:
                http.post(path)
            except httpx2.HTTPError:
                pass
"""


def test_a_sandbox_in_a_thread_writes_nothing_to_stdout() -> None:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", _SERVE_AND_REQUEST], capture_output=True, env=env, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b""


def test_the_blocking_runner_announces_its_url_on_stderr_only() -> None:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "FLOWHUNT_SANDBOX_PACING": "0"}
    command = [sys.executable, "-m", "flow_mcp.sandbox", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as process:
        assert process.stderr is not None and process.stdout is not None
        url = None
        while url is None:
            line = process.stderr.readline().decode()
            assert line, "the sandbox exited before announcing its URL"
            found = re.search(r"http://127\.0\.0\.1:\d+", line)
            url = found.group(0) if found else None
        with httpx2.Client(base_url=url) as http:
            assert http.get("/v2/auth/me", headers={"Api-Key": KEY}).status_code == 200
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=10)
    assert stdout == b""
