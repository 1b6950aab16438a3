"""Odd X-FlowHunt-Api-Key values against a --flowhunt-key-from-client server on 18801 (raw sockets, exact bytes)."""
import socket, json, sys
TOK = "alice-token-0123456789abcdef"

def raw(body: dict, key: bytes, sid: bytes | None = None):
    data = json.dumps(body).encode()
    head = (b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:18801\r\nAuthorization: Bearer " + TOK.encode() +
            b"\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\n" +
            b"X-FlowHunt-Api-Key: " + key + b"\r\n" + (b"Mcp-Session-Id: " + sid + b"\r\n" if sid else b"") +
            b"Content-Length: " + str(len(data)).encode() + b"\r\nConnection: close\r\n\r\n")
    s = socket.create_connection(("127.0.0.1", 18801), timeout=40)
    s.sendall(head + data)
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk: break
        out += chunk
    s.close()
    return out

def session(key):
    r = raw({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}, key)
    sid = [l.split(b": ",1)[1] for l in r.split(b"\r\n") if l.lower().startswith(b"mcp-session-id")]
    return sid[0] if sid else None

KEYS = {
    "latin1": "fh-s\u00e9cret-KEYVALUE-123".encode("latin-1"),
    "utf8": "fh-s\u00e9cret-KEYVALUE-123".encode("utf-8"),
    "tab inside": b"fh-sandbox\tKEYVALUE-123",
    "long 60k": b"K" * 60000,
    "sandbox key": b"fh-sandbox-key",
}
for label, key in KEYS.items():
    if len(sys.argv) > 1 and label not in sys.argv[1:]: continue
    sid = session(key)
    r = raw({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"create_session","arguments":{}}}, key, sid)
    print("---", label, "sid", sid, "\n", r.decode("latin-1")[-600:])
