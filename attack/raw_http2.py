"""Extreme argument values with a real session handle (server on 18800)."""
import json, base64, sys
sys.path.insert(0, "attack")
from raw_http import post, init, show

sid = init()
def call(i, name, args):
    return post({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": name, "arguments": args}}, sid=sid)
r = call(2, "create_session", {})
h = json.loads(r.text.split("data: ")[1])["result"]["structuredContent"]["session_id"]
print("handle", h)
def cur(state):
    return "c1." + base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")
tests = [
    ("wait NaN", "poll_events", {"session_id": h, "cursor": "0", "wait_seconds": float("nan")}),
    ("wait 1e308", "poll_events", {"session_id": h, "cursor": "0", "wait_seconds": 1e308}),
    ("wait -0.0", "poll_events", {"session_id": h, "cursor": "0", "wait_seconds": -0.0}),
    ("wait '5'", "poll_events", {"session_id": h, "cursor": "0", "wait_seconds": "5"}),
    ("wait true", "poll_events", {"session_id": h, "cursor": "0", "wait_seconds": True}),
    ("cursor 20 digits", "poll_events", {"session_id": h, "cursor": "9"*20}),
    ("cursor t huge", "poll_events", {"session_id": h, "cursor": cur({"t": 10**4000})}),
    ("cursor l huge", "poll_events", {"session_id": h, "cursor": cur({"t": 1, "a": 1, "l": -10**4000})}),
    ("cursor k huge", "poll_events", {"session_id": h, "cursor": cur({"t": 1, "k": 10**4000})}),
    ("cursor w weird keys", "poll_events", {"session_id": h, "cursor": cur({"t": 1, "s": "waiting_for_input", "w": {"kind": "x", "zzz": "y"}})}),
    ("cursor w no kind", "poll_events", {"session_id": h, "cursor": cur({"t": 1, "s": "waiting_for_input", "w": {"prompt": "y"}})}),
    ("cursor ids many", "poll_events", {"session_id": h, "cursor": cur({"t": 1, "i": ["x"*10]*2000})}),
    ("message empty", "invoke", {"session_id": h, "message": ""}),
    ("message NUL", "invoke", {"session_id": h, "message": "a\u0000b"}),
    ("ai_model weird", "invoke", {"session_id": h, "message": "hi", "ai_model": "gpt4.1\n"}),
    ("timeout 1e308", "ask", {"message": "hi", "session_id": h, "timeout_seconds": 1e308}),
    ("ctx flow odd", "create_session", {"context_flow_id": "../../v2/auth/me?x="}),
    ("welcome str", "create_session", {"start_with_welcome_message": "yes"}),
]
for i, (label, name, args) in enumerate(tests, 10):
    if len(sys.argv) > 1 and label not in sys.argv[1:]: continue
    show(label, call(i, name, args))
