"""Probe: double respond, attachment names, odd paths, list_flows odd args (in-memory client vs sandbox)."""
import anyio, base64, json, os, re, sys, tempfile
from mcp import Client
from flow_mcp.sandbox import DEFAULT_FLOWS, SandboxServer, SandboxConfig
from flow_mcp.server.app import build_server
sys.path.insert(0, ".")
from tests.conftest import settings_for

FAQ, SUPPORT, SALES_DASH, SALES, SCHED, EMAIL, ECHO, REPORT = (f.id for f in DEFAULT_FLOWS)
def txt(r): return "\n".join(getattr(b, "text", "") for b in r.content)

async def main():
    with SandboxServer(SandboxConfig(pacing=0.02, seed=7)) as sb:
        async with Client(build_server(settings_for(sb))) as c:
            # 1 double respond concurrently
            r = await c.call_tool("run_flow", {"flow_id": SCHED, "message": "book"})
            w = r.structured_content
            print("status", w["status"], w.get("waiting_for"))
            sid, hook = w["session_id"], w["waiting_for"]["hook_id"]
            res = []
            async def resp(m):
                x = await c.call_tool("respond", {"session_id": sid, "hook_id": hook, "message": m})
                res.append((m, x.is_error, txt(x)[:200]))
            async with anyio.create_task_group() as tg:
                tg.start_soon(resp, "Monday"); tg.start_soon(resp, "Tuesday")
            for x in res: print("RESP", x)
            s = sb.state.get_session(sid.removeprefix("flow."))
            print("resumes", [(e.get("status") if isinstance(e, dict) else e) for e in sb.state.session_resumes(s)])
            # 2 attachment names
            for name in ["../../etc/x.txt", "a\x00b.txt", 'q"\r\nX-Evil: 1.txt', "/abs/p.txt", "a\\b.txt", "x"*5000+".txt"]:
                r = await c.call_tool("run_flow", {"flow_id": ECHO, "message": "hi", "attachments": [{"name": name, "content_base64": "aGk="}]})
                print("NAME", repr(name[:30]), r.is_error, txt(r)[:160].replace("\n"," "))
            att = [e for e in sb.state.request_log() if e["kind"] == "flow_attach"]
            print("attach log sample", json.dumps(att[-1])[:600] if att else None)
            # 3 odd paths
            d = tempfile.mkdtemp(); fifo = os.path.join(d, "f.txt"); os.mkfifo(fifo)
            os.symlink("/dev/zero", os.path.join(d, "z.txt")); os.symlink(fifo, os.path.join(d, "l.txt"))
            for p in [fifo, os.path.join(d, "z.txt"), os.path.join(d, "l.txt"), "/dev/zero", "/proc/self/status", "relative.txt", "a\x00b.txt", d]:
                with anyio.move_on_after(10) as scope:
                    r = await c.call_tool("run_flow", {"flow_id": ECHO, "message": "hi", "attachments": [{"path": p, "name": "x.txt"}]})
                print("PATH", repr(p), "HUNG" if scope.cancelled_caught else (r.is_error, txt(r)[:200].replace("\n", " ")))
            # 4 list_flows odd
            for a in [{"limit": 0}, {"limit": 201}, {"limit": 1.5}, {"limit": "5"}, {"query": ""}, {"query": "\x00"}, {"query": "x"*100000}, {"query": "%"}, {"query": "BOT", "limit": 1}, {"extra": 1}]:
                r = await c.call_tool("list_flows", a)
                print("LIST", {k: (v if not isinstance(v, str) or len(v) < 20 else v[:5]+"..") for k, v in a.items()}, r.is_error, txt(r)[:150].replace("\n"," "))
anyio.run(main)
