#!/usr/bin/env bash
# Installs the peer gateways of benchmark scenario S6 into a scratch directory (default
# target/bench-peers/, never committed), from the package registries:
#   venv/                          Python with fastmcp (FastMCP's proxy)
#   node/node_modules/supergateway supergateway (stdio → streamable HTTP), run with the system node
# Safe to run again: only what is missing is installed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$root/target/bench-peers}"
FASTMCP_VERSION="${FASTMCP_VERSION:-4.2.3}"
SUPERGATEWAY_VERSION="${SUPERGATEWAY_VERSION:-4.0.0}"
mkdir -p "$dir/node"

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "peers.sh: '$1' is required ($2)" >&2; exit 1; }
}
need python3 "Debian: apt-get install -y python3 python3-venv"
need node "Debian: apt-get install -y nodejs npm"
need npm "Debian: apt-get install -y npm"

if [ ! -x "$dir/venv/bin/python" ]; then
  python3 -m venv "$dir/venv"
fi
if ! "$dir/venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('fastmcp') != '$FASTMCP_VERSION')" 2>/dev/null; then
  "$dir/venv/bin/pip" install --quiet --disable-pip-version-check "fastmcp==$FASTMCP_VERSION"
fi

if [ ! -f "$dir/node/node_modules/supergateway/package.json" ] \
  || ! grep -q "\"version\": \"$SUPERGATEWAY_VERSION\"" "$dir/node/node_modules/supergateway/package.json"; then
  (cd "$dir/node" && { [ -f package.json ] || echo '{"name":"mcpmux-bench-peers","private":true}' > package.json; } \
    && npm install --no-audit --no-fund --loglevel=error "supergateway@$SUPERGATEWAY_VERSION")
fi

echo "bench peers ready in $dir: fastmcp $("$dir/venv/bin/python" -c 'import importlib.metadata as m; print(m.version("fastmcp"))'), supergateway $(node -p "require('$dir/node/node_modules/supergateway/package.json').version"), node $(node --version)"
