"""flow_mcp as a library, in a fresh interpreter: no MCP SDK loaded, nothing written to stdout."""

from __future__ import annotations

import subprocess
import sys

from flow_mcp.sandbox import SandboxServer

from ..support.servers import server_env


def test_importing_flow_mcp_gives_the_client_without_the_mcp_sdk() -> None:
    code = (
        "import sys\n"
        "from flow_mcp import FlowHuntClient, Settings, AuthError, FlowMCPError, Cursor, __version__\n"
        "import flow_mcp\n"
        "assert set(flow_mcp.__all__) >= {'FlowHuntClient', 'Settings', 'AuthError', 'TransportError'}\n"
        "assert all(getattr(flow_mcp, name) for name in flow_mcp.__all__)\n"
        "assert issubclass(AuthError, FlowMCPError)\n"
        "assert not [m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')], 'mcp was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=server_env(None), timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_client_used_as_a_library_writes_nothing_to_stdout(sandbox: SandboxServer) -> None:
    program = (
        "import anyio\n"
        "from flow_mcp import FlowHuntClient, Settings\n"
        "async def main():\n"
        "    async with FlowHuntClient(Settings()) as client:\n"
        "        session = await client.create_session()\n"
        "        await client.invoke(session.session_id, 'hello')\n"
        "        await client.poll(session.session_id, '0')\n"
        "anyio.run(main)\n"
    )
    env = server_env(sandbox)
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
