"""Two concurrent tools/call with the same JSON-RPC id in one HTTP session (server on 18800): does each POST get its answer?"""
import sys, json, threading, time
sys.path.insert(0, "attack")
from raw_http import post, init
sid = init()
out = {}
def go(tag, msg, sess):
    t = time.monotonic()
    try:
        r = post({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "ask", "arguments": {"message": msg, "timeout_seconds": 8}}}, sid=sess)
        out[tag] = (round(time.monotonic() - t, 1), r.status_code, r.text[:200].replace("\n", " "))
    except Exception as e:
        out[tag] = (round(time.monotonic() - t, 1), "EXC", repr(e)[:200])
a = threading.Thread(target=go, args=("A", "hello A", sid)); b = threading.Thread(target=go, args=("B", "hello B", sid))
a.start(); time.sleep(0.3); b.start(); a.join(40); b.join(40)
for k, v in sorted(out.items()): print(k, v)
print("alive:", a.is_alive(), b.is_alive())
