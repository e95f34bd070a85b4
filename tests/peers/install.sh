#!/usr/bin/env bash
# Installs the MCP peers the test suite runs against into tests/peers/ (nothing global):
#   node_modules/  Node 22 (npm package `node`), @modelcontextprotocol/server-everything,
#                  @modelcontextprotocol/conformance
#   .venv/         Python with the official `mcp` SDK and `fastmcp`
# Safe to run again; it only installs what is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")"

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "install.sh: '$1' is required but not installed ($2)" >&2; exit 1; }
}
need npm "Debian: apt-get install -y npm"
need python3 "Debian: apt-get install -y python3 python3-venv"

if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node_modules/.bin/node --version | grep -q '^v22\.' || { echo "install.sh: Node 22 did not install" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import mcp, fastmcp' >/dev/null 2>&1 || [ requirements.txt -nt .venv/.installed ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
  touch .venv/.installed
fi
.venv/bin/python -c 'import mcp, fastmcp' || { echo "install.sh: Python peers did not install" >&2; exit 1; }
echo "test peers ready: $(node_modules/.bin/node --version), mcp $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("mcp"))'), fastmcp $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("fastmcp"))')"
