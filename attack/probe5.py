"""Probe over HTTP (real `flow-mcp serve --transport http` with two named clients): can bob respond to / poll
alice's flow session with her session_id? Also: do flow tools refuse extra args; are logs free of secrets."""
import anyio, os, sys, tempfile
sys.path.insert(0, ".")
from flow_mcp.sandbox import DEFAULT_FLOWS, SandboxServer, SandboxConfig
from tests.conftest import server_env
from tests.httpserver import HttpServer, http_client
SCHED = DEFAULT_FLOWS[4].id
def txt(r): return "\n".join(getattr(b, "text", "") for b in r.content)
async def main():
    d = tempfile.mkdtemp(); tf = os.path.join(d, "tokens"); open(tf, "w").write("alice:tok-alice-123456789\nbob:tok-bob-987654321\n")
    with SandboxServer(SandboxConfig(pacing=0.02, seed=7)) as sb:
        env = server_env(sb, FLOW_MCP_TOKENS_FILE=tf, FLOW_MCP_FLOW_TOOLS="all")
        with HttpServer(env) as srv:
            async with http_client(srv.url, token="tok-alice-123456789") as a, http_client(srv.url, token="tok-bob-987654321") as b:
                r = await a.call_tool("run_flow", {"flow_id": SCHED, "message": "book"})
                w = r.structured_content; sid, hook = w["session_id"], w["waiting_for"]["hook_id"]
                raw = "flow." + [e["path"] for e in sb.state.request_log() if e["kind"] == "flow_invoke"][-1].split("/")[4]
                print("alice sid", sid, raw)
                for tool, args in [("respond", {"session_id": sid, "hook_id": hook, "message": "bob says Friday"}),
                                   ("poll_events", {"session_id": sid, "cursor": w["cursor"]}),
                                   ("run_flow", {"flow_id": SCHED, "message": "hi", "session_id": sid}),
                                   ("respond", {"session_id": raw, "hook_id": hook, "message": "raw id"})]:
                    x = await b.call_tool(tool, args)
                    print("BOB", tool, x.is_error, txt(x)[:160].replace("\n", " "))
                print("resumes", [e.get("resume_status") for e in sb.state.request_log() if e["kind"] == "flow_resume_hook"])
                tools = [t.name for t in (await a.list_tools()).tools]
                print("tools", tools)
                ft = [t for t in tools if t.startswith("flow_")]
                for args in [{"message": "hi", "flow_id": DEFAULT_FLOWS[4].id}, {"message": "hi", "attachments": []}, {"message": 5}, {}, {"message": "hi", "session_id": sid}]:
                    x = await b.call_tool("flow_faq_bot_en", args)
                    print("FT", args, x.is_error, txt(x)[:160].replace("\n", " "))
        logs = srv.stderr
        for secret in ["tok-alice-123456789", "tok-bob-987654321", sb.config.api_key]:
            print("secret in log?", secret[:8], secret in logs)
anyio.run(main)
