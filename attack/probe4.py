"""Probe: an elicitation answer that does not fit the form (legacy and modern): what does the result say?"""
import anyio, sys
from mcp import Client
from mcp_types import ElicitResult
from flow_mcp.sandbox import DEFAULT_FLOWS, SandboxServer, SandboxConfig
from flow_mcp.server.app import build_server
sys.path.insert(0, ".")
from tests.conftest import settings_for
SCHED = DEFAULT_FLOWS[4].id
async def main():
    for mode in ["legacy", "auto"]:
        with SandboxServer(SandboxConfig(pacing=0.02, seed=7)) as sb:
            async def user(ctx, params):
                return ElicitResult(action="accept", content={"answer": "x" * 70000})
            async with Client(build_server(settings_for(sb)), mode=mode, elicitation_callback=user) as c:
                r = await c.call_tool("run_flow", {"flow_id": SCHED, "message": "go"})
                print(mode, "note=", r.structured_content.get("note"), "\n", "\n".join(b.text for b in r.content))
anyio.run(main)
