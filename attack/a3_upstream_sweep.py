"""Odd FlowHunt answers, one at a time, through ask/poll_events (in-memory MCP client, scripted upstream)."""
import json, sys, anyio, logging
sys.path.insert(0, ".")
from tests.upstream import Upstream, Scripted
from tests.test_fuzz import upstream_settings, text_of
from mcp import Client
from flow_mcp.server.app import build_server

def ev(i, ts, action="message", etype="ai", **meta):
    return {"event_id": i, "created_at_timestamp": ts, "event_type": etype, "action_type": action, "metadata": meta}
A = ev("a1", "5000", message="ok", message_id="m")
CASES = {
    "poll 204": dict(poll=Scripted(204, b"")),
    "poll 200 empty body": dict(poll=Scripted(200, b"")),
    "poll 301": dict(poll=Scripted(301, b"", {"Location": "http://127.0.0.1:1/x"})),
    "poll 304": dict(poll=Scripted(304, b"")),
    "poll html 200": dict(poll=Scripted(200, b"<html>maintenance</html>", {"Content-Type": "text/html"})),
    "poll json but ct text/html": dict(poll=Scripted(200, json.dumps([A]).encode(), {"Content-Type": "text/html"})),
    "poll utf16 json": dict(poll=Scripted(200, json.dumps([A]).encode("utf-16"))),
    "poll BOM json": dict(poll=Scripted(200, b"\xef\xbb\xbf" + json.dumps([A]).encode())),
    "poll dup keys": dict(poll=Scripted(200, b'[{"event_id":"a1","event_id":"a2","created_at_timestamp":"5000","created_at_timestamp":"99999999999999","event_type":"ai","action_type":"message","metadata":{"message":"x","message":"y"}}]')),
    "poll ts float str": dict(poll=Scripted(200, json.dumps([ev("a1", "5000.0", message="ok")]).encode())),
    "poll ts float": dict(poll=Scripted(200, json.dumps([ev("a1", 5000.0, message="ok")]).encode())),
    "poll ts 5000.7": dict(poll=Scripted(200, json.dumps([ev("a1", 5000.7, message="ok")]).encode())),
    "poll ts iso": dict(poll=Scripted(200, json.dumps([ev("a1", "2026-11-27T10:00:00Z", message="ok")]).encode())),
    "poll ts seconds not ms": dict(poll=Scripted(200, json.dumps([ev("a1", "5", message="ok")]).encode())),
    "poll credits 1e999": dict(poll=Scripted(200, b'[{"event_id":"a1","created_at_timestamp":"5000","event_type":"ai","action_type":"message","credits":1e999,"metadata":{"message":"ok"}}]')),
    "poll deep metadata": dict(poll=Scripted(200, b'[{"event_id":"a1","created_at_timestamp":"5000","event_type":"ai","action_type":"message","metadata":{"message":"ok","x":' + b"[" * 5000 + b"]" * 5000 + b'}}]')),
    "poll wide metadata": dict(poll=Scripted(200, json.dumps([ev("a1", "5000", message="ok", **{f"k{i}": i for i in range(200000)})]).encode())),
    "poll event_id odd": dict(poll=Scripted(200, json.dumps([ev("\u0000\n\u202e../" + "x" * 5000, "5000", message="ok")]).encode())),
    "poll event_id dict": dict(poll=Scripted(200, json.dumps([ev({"a": 1}, "5000", message="ok")]).encode())),
    "poll event_id float": dict(poll=Scripted(200, json.dumps([ev(1.5, "5000", message="ok")]).encode())),
    "poll event_id bool": dict(poll=Scripted(200, json.dumps([ev(True, "5000", message="ok")]).encode())),
    "poll object not list": dict(poll=Scripted(200, json.dumps({"events": [A]}).encode())),
    "poll message not str": dict(poll=Scripted(200, json.dumps([ev("a1", "5000", message={"text": "hi"})]).encode())),
    "poll huge header": dict(poll=Scripted(200, json.dumps([A]).encode(), {"X-Big": "a" * 200000})),
    "invoke created_at future": dict(invoke=Scripted(200, b'{"message_id":"m","created_at":"99999999999999999999"}'), poll=Scripted(200, json.dumps([A]).encode())),
    "invoke created_at iso": dict(invoke=Scripted(200, b'{"message_id":"m","created_at":"2026-11-27T10:00:00Z"}')),
    "invoke 201 empty": dict(invoke=Scripted(201, b"")),
    "invoke 204": dict(invoke=Scripted(204, b"")),
    "create sid odd": dict(create=Scripted(200, b'{"session_id":"../../v2/auth/me?x=","created_at":"1"}')),
    "create sid spaces": dict(create=Scripted(200, b'{"session_id":"abc def","created_at":"1"}')),
    "create sid int": dict(create=Scripted(200, b'{"session_id":12345,"created_at":"1"}')),
    "create 302": dict(create=Scripted(302, b"", {"Location": "/v3/flow-assistants/create"})),
    "me 200 html": dict(me=Scripted(200, b"<html/>", {"Content-Type": "text/html"})),
}

async def main():
    logging.disable(logging.CRITICAL)
    only = sys.argv[1:]
    for label, script in CASES.items():
        if only and label not in only: continue
        with Upstream() as up:
            up.script(**script)
            async with Client(build_server(upstream_settings(up, ask_timeout=1.5))) as c:
                with anyio.fail_after(30):
                    r = await c.call_tool("ask", {"message": "hi"})
                sc = r.structured_content or {}
                print(f"--- {label}: err={r.is_error} status={sc.get('status')} answer={str(sc.get('answer'))[:60]!r} events={sc.get('events_count')}")
                if r.is_error: print("    ", text_of(r)[:300])
anyio.run(main)
