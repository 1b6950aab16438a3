"""Probe: continue a flow session with an attachment; the upload answers 500 (after FlowHunt stored it). The error
says "Retry shortly"; retrying as told attaches the same file twice."""
import anyio, sys
import httpx2 as httpx
from mcp import Client
from flow_mcp.sandbox import DEFAULT_FLOWS, SandboxServer, SandboxConfig
from flow_mcp.server.app import build_server
sys.path.insert(0, ".")
from tests.conftest import settings_for
ECHO = DEFAULT_FLOWS[6].id
def txt(r): return "\n".join(getattr(b, "text", "") for b in r.content)
async def main():
    with SandboxServer(SandboxConfig(pacing=0.02, seed=3)) as sb:
        async with Client(build_server(settings_for(sb))) as c:
            r = await c.call_tool("run_flow", {"flow_id": ECHO, "message": "first"})
            sid = r.structured_content["session_id"]
            httpx.post(f"{sb.url}/_sandbox/config", json={"rate_500": 1.0, "fault_only": "/attachments"})
            att = [{"name": "report.txt", "content_base64": "aGk="}]
            r = await c.call_tool("run_flow", {"flow_id": ECHO, "message": "second", "session_id": sid, "attachments": att})
            print("1st try:", r.is_error, txt(r)[:200])
            httpx.post(f"{sb.url}/_sandbox/config", json={"rate_500": 0.0, "fault_only": ""})
            r = await c.call_tool("run_flow", {"flow_id": ECHO, "message": "second", "session_id": sid, "attachments": att})
            print("retry:", r.is_error, txt(r)[:200])
            print("attach calls:", [(e["kind"], e.get("status")) for e in sb.state.request_log() if e["kind"] == "flow_attach"])
anyio.run(main)
