"""FastMCP's proxy in front of bench/echo_server.py, served over streamable HTTP: scenario S6.

Usage: fastmcp_proxy.py PYTHON ECHO_SERVER [PORT]

One `fastmcp.Client` over stdio is connected first and handed to `create_proxy`: given an
already-connected plain `Client`, FastMCP 4.x reuses that one session for every request (the
"shared client" mode; a disconnected client, or a `ProxyClient`, would get a fresh backend
session per request). The proxy serves streamable HTTP at /mcp on 127.0.0.1 (stateful, SSE
answers, FastMCP's defaults). Prints the port once the backend session is up, then serves until
killed.
"""

import asyncio
import logging
import os
import socket
import sys

os.environ.setdefault("FASTMCP_LOG_LEVEL", "WARNING")
os.environ.setdefault("FASTMCP_SHOW_CLI_BANNER", "false")

from fastmcp import Client  # noqa: E402
from fastmcp.client.transports import StdioTransport  # noqa: E402
from fastmcp.server import create_proxy  # noqa: E402


async def main():
    if len(sys.argv) < 3:
        sys.exit("usage: fastmcp_proxy.py PYTHON ECHO_SERVER [PORT]")
    python, echo = sys.argv[1], sys.argv[2]
    port = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    port = sock.getsockname()[1]
    client = Client(StdioTransport(command=python, args=[echo], keep_alive=True))
    async with client:
        proxy = create_proxy(client, name="fastmcp-proxy-bench")
        print(port, flush=True)
        await proxy.run_http_async(
            transport="http",
            host="127.0.0.1",
            port=port,
            sockets=[sock],
            show_banner=False,
            log_level="warning",
        )


if __name__ == "__main__":
    logging.getLogger("fastmcp").setLevel(logging.WARNING)
    asyncio.run(main())
