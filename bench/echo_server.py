"""A minimal MCP echo server on stdio, with no SDK: the common backend of benchmark scenario S6.

mcpmux, supergateway and FastMCP's proxy each front this same program, so what differs between
them is the gateway alone. It speaks newline-delimited JSON-RPC: `initialize`, `ping`,
`tools/list` (one tool, `echo`) and `tools/call echo`, which returns its `text` argument as one
text content item. It reads whatever is available (up to 64 KiB), answers every complete line,
and writes all the answers at once, so pipelined requests cost one write. Exits on EOF.

Usage: python3 echo_server.py
"""

import json
import os
import sys

VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
TOOLS = {
    "tools": [
        {
            "name": "echo",
            "description": "Returns the text unchanged.",
            "inputSchema": {
                "type": "object",
                "properties": {"text": {"type": "string", "description": "Text to echo back."}},
                "required": ["text"],
            },
        }
    ]
}


def answer(msg):
    """The response to one message, or None for notifications and responses."""
    if not isinstance(msg, dict) or "method" not in msg or "id" not in msg:
        return None
    rid = msg["id"]
    method = msg["method"]
    params = msg.get("params") or {}
    if method == "tools/call":
        text = (params.get("arguments") or {}).get("text")
        if params.get("name") != "echo" or not isinstance(text, str):
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32602, "message": "unknown tool or bad text"}}
        return {"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": text}]}}
    if method == "tools/list":
        return {"jsonrpc": "2.0", "id": rid, "result": TOOLS}
    if method == "initialize":
        asked = params.get("protocolVersion")
        return {
            "jsonrpc": "2.0",
            "id": rid,
            "result": {
                "protocolVersion": asked if asked in VERSIONS else VERSIONS[0],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "bench-echo-python", "version": "0"},
            },
        }
    if method == "ping":
        return {"jsonrpc": "2.0", "id": rid, "result": {}}
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "method not found: " + str(method)}}


def main():
    stdin = sys.stdin.fileno()
    stdout = sys.stdout.fileno()
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    pending = b""
    while True:
        chunk = os.read(stdin, 65536)
        if not chunk:
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        out = []
        for line in lines:
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except ValueError as e:
                out.append(dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": str(e)}}))
                continue
            reply = answer(msg)
            if reply is not None:
                out.append(dumps(reply))
        if out:
            data = ("\n".join(out) + "\n").encode()
            while data:
                data = data[os.write(stdout, data):]


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
