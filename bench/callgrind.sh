#!/usr/bin/env bash
# Instruction counts of the mcpmux process (children not traced) under callgrind, which do not
# depend on the machine's load (wall-clock numbers on this shared machine do).
#
#   bench/callgrind.sh call [SECS]   # per tools/call: 1 connection → mcpmux → Rust stdio echo
#   bench/callgrind.sh http [SECS]   # the same → Rust streamable-HTTP echo (not traced)
#   bench/callgrind.sh start         # start-up: 10 stdio echo backends × 100 tools → `serving`
#
# Needs valgrind and the release binaries (cargo build --release --bins). MCPMUX=path picks
# another mcpmux binary (to compare builds). The callgrind files are left in target/callgrind/
# for callgrind_annotate --inclusive=yes.
set -euo pipefail
cd "$(dirname "$0")/.."
rel=$PWD/target/release
bin=${MCPMUX:-$rel/mcpmux}
out=$PWD/target/callgrind
mkdir -p "$out"
what=${1:-call}
log=$out/$what.log
rm -f "$out/$what".cg*
backend=
if [ "$what" = call ]; then
  printf '{"mcpServers":{"echo":{"command":"%s","args":["stdio"]}}}\n' "$rel/mcpmux-bench-echo" >"$out/call.json"
elif [ "$what" = http ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$rel/mcpmux-bench-echo" http "$port" & backend=$!
  trap 'kill -TERM $backend 2>/dev/null; wait $backend 2>/dev/null || true' EXIT
  printf '{"mcpServers":{"echo":{"url":"http://127.0.0.1:%s/mcp"}}}\n' "$port" >"$out/http.json"
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.05; done
else
  { printf '{"mcpServers":{'
    for i in 0 1 2 3 4 5 6 7 8 9; do
      [ $i = 0 ] || printf ','
      printf '"b%s":{"command":"%s","args":["stdio","--tools","100"]}' $i "$rel/mcpmux-bench-echo"
    done
    printf '},"mcpmux":{"pageSize":10000}}\n'; } >"$out/start.json"
fi
RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out/$what.cg" \
  "$bin" serve --config "$out/$what.json" --listen 127.0.0.1:0 >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 900); do grep -q '^serving ' "$log" && break; sleep 0.1; done
url=$(grep '^serving ' "$log" | head -1 | cut -d' ' -f2)
if [ "$what" != start ]; then
  callgrind_control -z $pid >/dev/null 2>&1
  load=$("$rel/mcpmux-bench" load --url "$url" --conns 1 --duration "${2:-3}" --warmup 0 --tool echo_echo)
  callgrind_control -d $pid >/dev/null 2>&1
  kill -TERM $pid; wait $pid || true
  calls=$(sed 's/.*"calls":\([0-9]*\).*/\1/' <<<"$load")
  total=$(sed -n 's/^summary: //p' "$out/$what.cg.1")
  echo "calls $calls, instructions $total, per call $((total / calls))"
else
  kill -TERM $pid; wait $pid || true
  echo "start-up + shutdown instructions $(sed -n 's/^summary: //p' "$out/start.cg")"
fi
