"""F: one event whose metadata nests 2,000 deep makes every poll of the session unreadable, forever."""
import json, sys, anyio, logging
sys.path.insert(0, ".")
from tests.upstream import Upstream, Scripted
from tests.test_fuzz import upstream_settings, text_of
from mcp import Client
from flow_mcp.server.app import build_server

POISON = b'{"event_id":"tool","created_at_timestamp":"4000","event_type":"ai","action_type":"hitl_approval_requested","metadata":{"tool_name":"t","tool_args":' + b"[" * 2000 + b"]" * 2000 + b'}}'
ANSWER = b'{"event_id":"a1","created_at_timestamp":"5000","event_type":"ai","action_type":"message","metadata":{"message":"ok"}}'

async def main():
    logging.disable(logging.CRITICAL)
    with Upstream() as up:
        up.script(poll=Scripted(200, b"[" + POISON + b"," + ANSWER + b"]"))
        async with Client(build_server(upstream_settings(up, workspace_id="ws-1"))) as c:
            for cursor in ("0", "1000", "3999"):
                r = await c.call_tool("poll_events", {"session_id": "sess-1", "cursor": cursor})
                print(cursor, r.is_error, text_of(r)[:160])
anyio.run(main)
