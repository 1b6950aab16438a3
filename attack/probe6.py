"""Probe: under 500s/resets/truncations on /v2/flows, is any message sent twice or any hook resumed twice?"""
import anyio, sys, collections
from mcp import Client
from flow_mcp.sandbox import DEFAULT_FLOWS, SandboxServer, SandboxConfig
from flow_mcp.server.app import build_server
sys.path.insert(0, ".")
from tests.conftest import settings_for
SCHED, ECHO = DEFAULT_FLOWS[4].id, DEFAULT_FLOWS[6].id
def txt(r): return "\n".join(getattr(b, "text", "") for b in r.content)
async def main():
    with SandboxServer(SandboxConfig(pacing=0.02, seed=11, rate_500=0.25, rate_reset=0.1, rate_truncated=0.1, rate_503=0.1, fault_only="/v2/flows")) as sb:
        async with Client(build_server(settings_for(sb, retry_max_seconds=5.0))) as c:
            for i in range(12):
                with anyio.move_on_after(60):
                    r = await c.call_tool("run_flow", {"flow_id": SCHED, "message": f"book {i}"})
                    w = r.structured_content or {}
                    if w.get("status") == "waiting_for_input":
                        for attempt in range(3):
                            x = await c.call_tool("respond", {"session_id": w["session_id"], "hook_id": w["waiting_for"]["hook_id"], "message": f"day {i}"})
                            print(i, "respond", attempt, x.is_error, txt(x)[:110].replace("\n", " "))
                            if not x.is_error: break
                    else:
                        print(i, "run", r.is_error, txt(r)[:110].replace("\n", " "))
        log = sb.state.request_log()
        inv = collections.Counter(e["path"].split("/")[4] for e in log if e["kind"] == "flow_invoke" and e.get("status") in (200, 201, 500))
        res = collections.Counter(e["path"].split("/")[4] for e in log if e["kind"] == "flow_resume_hook" and e.get("resume_status") == "resumed")
        for sid in inv:
            s = sb.state.get_session(sid)
            n = len(sb.state.session_invocations(s)) if s else None
            if n and n > 1: print("MESSAGE SENT TWICE", sid, n)
        print("sessions", len(inv), "max resumed per session", max(res.values() or [0]))
anyio.run(main)
