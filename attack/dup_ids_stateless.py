"""Stateless server (18802): alice and bob send tools/call with the same JSON-RPC id at the same time."""
import json, threading, time
import httpx2 as httpx
URL = "http://127.0.0.1:18802/mcp"
def h(tok): return {"Authorization": f"Bearer {tok}", "Accept": "application/json, text/event-stream", "Content-Type": "application/json", "MCP-Protocol-Version": "2025-06-18"}
out = {}
def go(tag, tok, msg):
    t = time.monotonic()
    try:
        r = httpx.post(URL, headers=h(tok), timeout=30, content=json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "ask", "arguments": {"message": msg, "timeout_seconds": 8}}}))
        out[tag] = (round(time.monotonic() - t, 1), r.status_code, r.text[:160].replace("\n", " "))
    except Exception as e:
        out[tag] = (round(time.monotonic() - t, 1), "EXC", repr(e)[:200])
ts = [threading.Thread(target=go, args=("alice", "alice-token-0123456789abcdef", "secret plan of ALICE")),
      threading.Thread(target=go, args=("bob", "bob-token-0123456789abcdefgh", "hello from BOB"))]
for t in ts: t.start(); time.sleep(0.2)
for t in ts: t.join(40)
for k, v in sorted(out.items()): print(k, v)
