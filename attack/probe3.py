"""Probe: 2026-07-28 (default mode) client whose user answers the form with an extra field: the call raises."""
import anyio, sys, traceback
from mcp import Client
from mcp_types import ElicitResult
from flow_mcp.sandbox import DEFAULT_FLOWS, SandboxServer, SandboxConfig
from flow_mcp.server.app import build_server
sys.path.insert(0, ".")
from tests.conftest import settings_for
SCHED = DEFAULT_FLOWS[4].id
async def main():
    with SandboxServer(SandboxConfig(pacing=0.02, seed=7)) as sb:
        async def user(ctx, params):
            return ElicitResult(action="accept", content={"answer": "Monday", "extra": "x"})
        async with Client(build_server(settings_for(sb)), elicitation_callback=user) as c:
            try:
                r = await c.call_tool("run_flow", {"flow_id": SCHED, "message": "go"})
                print("RESULT", r.is_error, r.structured_content and r.structured_content.get("status"))
            except BaseException as e:
                traceback.print_exception(e)
anyio.run(main)
