"""Raw JSON-RPC over HTTP against a running flow-mcp http server (port 18800, token below)."""
import json, sys, socket, time
import httpx2 as httpx
URL = "http://127.0.0.1:18800/mcp"
TOK = "alice-token-0123456789abcdef"
H = {"Authorization": f"Bearer {TOK}", "Accept": "application/json, text/event-stream", "Content-Type": "application/json"}

def post(body, headers=None, sid=None, raw=False):
    h = dict(H, **(headers or {}))
    if sid: h["Mcp-Session-Id"] = sid
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    r = httpx.post(URL, content=data, headers=h, timeout=30)
    return r

def init(proto="2025-06-18"):
    r = post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": proto, "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})
    sid = r.headers.get("mcp-session-id")
    post({"jsonrpc": "2.0", "method": "notifications/initialized"}, sid=sid)
    return sid

def show(label, r):
    print(f"--- {label}: {r.status_code} {r.headers.get('content-type')}\n{r.text[:400]}")

if __name__ == "__main__":
    sid = init()
    cases = {
        "tools/call before init (no session)": ({"jsonrpc":"2.0","id":2,"method":"tools/list"}, None, None),
        "wait NaN": ({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"poll_events","arguments":{"session_id":"x"*40,"cursor":"0","wait_seconds":float("nan")}}}, None, sid),
        "wait 1e308": ({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"poll_events","arguments":{"session_id":"x"*40,"cursor":"0","wait_seconds":1e308}}}, None, sid),
        "huge id": ({"jsonrpc":"2.0","id":10**30,"method":"tools/list"}, None, sid),
        "float id": ({"jsonrpc":"2.0","id":1.5,"method":"tools/list"}, None, sid),
        "null id": ({"jsonrpc":"2.0","id":None,"method":"tools/list"}, None, sid),
        "bool id": ({"jsonrpc":"2.0","id":True,"method":"tools/list"}, None, sid),
        "obj id": ({"jsonrpc":"2.0","id":{"a":1},"method":"tools/list"}, None, sid),
        "unknown method": ({"jsonrpc":"2.0","id":5,"method":"nope/nope"}, None, sid),
        "notif w/ id unknown": ({"jsonrpc":"2.0","id":6,"method":"notifications/cancelled","params":{"requestId":1}}, None, sid),
        "batch": ([{"jsonrpc":"2.0","id":7,"method":"tools/list"}], None, sid),
        "empty batch": ([], None, sid),
        "jsonrpc 1.0": ({"jsonrpc":"1.0","id":8,"method":"tools/list"}, None, sid),
        "non-utf8": (b'{"jsonrpc":"2.0","id":9,"method":"tools/list","params":{"x":"\xff\xfe"}}', None, sid),
        "lone surrogate": (b'{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"ask","arguments":{"message":"\\ud800"}}}', None, sid),
        "text/plain": ({"jsonrpc":"2.0","id":11,"method":"tools/list"}, {"Content-Type":"text/plain"}, sid),
        "no accept": ({"jsonrpc":"2.0","id":12,"method":"tools/list"}, {"Accept":"*/*"}, sid),
        "dup keys": ('{"jsonrpc":"2.0","id":13,"method":"tools/list","method":"tools/call","params":{"name":"nope"}}', None, sid),
        "args not object": ({"jsonrpc":"2.0","id":14,"method":"tools/call","params":{"name":"poll_events","arguments":[1,2]}}, None, sid),
        "deep nesting": ('{"jsonrpc":"2.0","id":15,"method":"tools/list","params":' + "["*100000 + "]"*100000 + "}", None, sid),
        "res read bogus": ({"jsonrpc":"2.0","id":16,"method":"resources/read","params":{"uri":"flowhunt://sessions/../../etc/passwd/events"}}, None, sid),
        "prompt bogus": ({"jsonrpc":"2.0","id":17,"method":"prompts/get","params":{"name":"x"*100000}}, None, sid),
        "timeout nan": ({"jsonrpc":"2.0","id":18,"method":"tools/call","params":{"name":"ask","arguments":{"message":"hi","timeout_seconds":"NaN"}}}, None, sid),
        "wait inf str": ('{"jsonrpc":"2.0","id":19,"method":"tools/call","params":{"name":"poll_events","arguments":{"session_id":"abc","cursor":"0","wait_seconds":Infinity}}}', None, sid),
        "wait 1e999": ('{"jsonrpc":"2.0","id":20,"method":"tools/call","params":{"name":"poll_events","arguments":{"session_id":"abc","cursor":"0","wait_seconds":1e999}}}', None, sid),
        "big int wait": ('{"jsonrpc":"2.0","id":21,"method":"tools/call","params":{"name":"poll_events","arguments":{"session_id":"abc","cursor":"0","wait_seconds":' + "9"*5000 + '}}}', None, sid),
        "big int id": ('{"jsonrpc":"2.0","id":' + "9"*5000 + ',"method":"tools/list"}', None, sid),
    }
    only = sys.argv[1:]
    for label, (body, hdr, s) in cases.items():
        if only and label not in only: continue
        try:
            show(label, post(body, hdr, s))
        except Exception as e:
            print(f"--- {label}: EXC {type(e).__name__} {e}")
