"""Probe: elicitation answers of wrong shape/type/size, on both protocol generations (in-memory, sandbox)."""
import anyio, sys
from mcp import Client
from mcp_types import ElicitResult
from flow_mcp.sandbox import DEFAULT_FLOWS, SandboxServer, SandboxConfig
from flow_mcp.server.app import build_server
sys.path.insert(0, ".")
from tests.conftest import settings_for
FAQ, SUPPORT, SALES_DASH, SALES, SCHED, EMAIL, ECHO, REPORT = (f.id for f in DEFAULT_FLOWS)
def txt(r): return "\n".join(getattr(b, "text", "") for b in r.content)

CASES = [
    (SCHED, "accept", {"answer": 123}), (SCHED, "accept", {"answer": ""}), (SCHED, "accept", {"answer": "x" * 70000}),
    (SCHED, "accept", {"answer": "é" * 30000}), (SCHED, "accept", {"answer": "ok", "extra": [1, 2]}), (SCHED, "accept", None),
    (SCHED, "accept", {"answer": None}), (SCHED, "decline", None), (SCHED, "cancel", None),
    (EMAIL, "accept", {"decision": "maybe"}), (EMAIL, "accept", {"decision": "approve", "reason": 5}),
    (EMAIL, "accept", {"decision": "reject", "reason": "r" * 5000}), (EMAIL, "accept", {"decision": True}),
    (EMAIL, "accept", {"decision": "reject"}), (EMAIL, "accept", {"answer": "approve"}),
]
async def main():
    for mode in ["legacy", "auto"]:
        for flow, action, content in CASES:
            with SandboxServer(SandboxConfig(pacing=0.02, seed=7)) as sb:
                n = 0
                async def user(ctx, params):
                    nonlocal n; n += 1
                    return ElicitResult(action=action, content=content)
                async with Client(build_server(settings_for(sb)), mode=mode, elicitation_callback=user) as c:
                    with anyio.move_on_after(40) as scope:
                        try:
                            r = await c.call_tool("run_flow", {"flow_id": flow, "message": "go"})
                            out = (r.is_error, (r.structured_content or {}).get("status"), (r.structured_content or {}).get("note"), txt(r)[:100].replace("\n", " "))
                        except Exception as e:
                            out = ("EXC", type(e).__name__, str(e)[:200])
                    res = [e for e in sb.state.request_log() if e["kind"] == "flow_resume_hook"]
                    print(mode, flow[-2:], action, repr(content)[:40], "asked", n, "HUNG" if scope.cancelled_caught else out, "resumes", [(e.get("status"), e.get("resume_status")) for e in res])
anyio.run(main)
