"""F1: >128 events in one millisecond: poll_events re-delivers events (and can loop forever)."""
import json, sys, anyio
sys.path.insert(0, ".")
from tests.upstream import Upstream, Scripted
from tests.test_fuzz import upstream_settings
from mcp import Client
from flow_mcp.server.app import build_server

N = int(sys.argv[1]) if len(sys.argv) > 1 else 150

def events(n, ts=5000):
    return [{"event_id": f"ev-{i:04d}", "created_at_timestamp": str(ts), "event_type": "ai",
             "action_type": "loading", "metadata": {"loading_desc": f"step {i}"}} for i in range(n)]

async def main():
    with Upstream() as up:
        up.script(poll=Scripted(200, json.dumps(events(N)).encode()))
        async with Client(build_server(upstream_settings(up, workspace_id="ws-1"))) as c:
            cursor, seen, total = "1000", {}, 0
            for call in range(5):
                r = await c.call_tool("poll_events", {"session_id": "sess-1", "cursor": cursor})
                sc = r.structured_content
                ids = [e["event_id"] for e in sc["events"]]
                for i in ids: seen[i] = seen.get(i, 0) + 1
                total += len(ids)
                print(f"call {call}: {len(ids)} events, more={sc['more']}, status={sc['status']}")
                cursor = sc["cursor"]
            dup = {k: v for k, v in seen.items() if v > 1}
            print(f"distinct={len(seen)} delivered={total} duplicated_ids={len(dup)}")

anyio.run(main)
