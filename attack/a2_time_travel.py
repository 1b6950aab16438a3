"""F2/F3: an event stamped in the far future (still < 10**16) swallows the rest of the turn; an event that becomes
visible after a later-stamped one was delivered is silently dropped."""
import json, sys, anyio
sys.path.insert(0, ".")
from tests.upstream import Upstream, Scripted
from tests.test_fuzz import upstream_settings
from mcp import Client
from flow_mcp.server.app import build_server

def ev(i, ts, action="loading", etype="ai", **meta):
    return {"event_id": i, "created_at_timestamp": str(ts), "event_type": etype, "action_type": action, "metadata": meta}

ANSWER = ev("ans", 6000, "message", message_id="m", message="the answer")

async def poll(c, cursor):
    r = await c.call_tool("poll_events", {"session_id": "sess-1", "cursor": cursor})
    sc = r.structured_content
    return [e["event_id"] for e in sc["events"]], sc["cursor"], sc["status"]

async def main():
    with Upstream() as up:
        async with Client(build_server(upstream_settings(up, workspace_id="ws-1"))) as c:
            # far future: year 2100 timestamp from a junk/clock-broken event
            future = ev("junk", 4102444800000, "agent_cot", content="?")
            up.script(poll=Scripted(200, json.dumps([future]).encode()))
            ids, cur, st = await poll(c, "1000"); print("future 1:", ids, st)
            up.script(poll=Scripted(200, json.dumps([future, ANSWER]).encode()))
            for _ in range(3):
                ids, cur, st = await poll(c, cur); print("future n:", ids, st)
            # backwards: e-late stamped 4000 becomes visible after e-early at 5000 was delivered
            up.script(poll=Scripted(200, json.dumps([ev("e5000", 5000)]).encode()))
            ids, cur, st = await poll(c, "1000"); print("back 1:", ids, st)
            up.script(poll=Scripted(200, json.dumps([ev("e5000", 5000), ev("e4000", 4000, "v3_tool_call_start", tool_name="x", agent_query="q"), ANSWER]).encode()))
            ids, cur, st = await poll(c, cur); print("back 2:", ids, st, "(e4000 never delivered)")

anyio.run(main)
