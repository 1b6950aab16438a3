"""Probe: run_flow with an attachment whose upload fails (500 after a 201 create, or a FlowHunt 400 on a long
name): is the already-created session reported, is the file attached twice, was the message sent?"""
import anyio, sys
from mcp import Client
from flow_mcp.sandbox import DEFAULT_FLOWS, SandboxServer, SandboxConfig
from flow_mcp.server.app import build_server
sys.path.insert(0, ".")
from tests.conftest import settings_for
ECHO = DEFAULT_FLOWS[6].id
def txt(r): return "\n".join(getattr(b, "text", "") for b in r.content)
async def main():
    for cfg, name in [(dict(rate_500=1.0, fault_only="/attachments"), "a.txt"), ({}, "x" * 5000 + ".txt")]:
        with SandboxServer(SandboxConfig(pacing=0.02, seed=3, **cfg)) as sb:
            async with Client(build_server(settings_for(sb))) as c:
                r = await c.call_tool("run_flow", {"flow_id": ECHO, "message": "hi", "attachments": [{"name": name, "content_base64": "aGk="}]})
                print(cfg, r.is_error, "|", txt(r)[:400].replace("\n", " "))
                kinds = [(e["kind"], e.get("status")) for e in sb.state.request_log() if e["kind"]]
                print("  calls:", kinds)
anyio.run(main)
