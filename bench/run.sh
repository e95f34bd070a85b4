#!/usr/bin/env bash
# Reproduces the table in BENCHMARKS.md: installs the S6 peers into target/bench-peers/ (not
# committed), builds the release binaries (mcpmux, mcpmux-bench, mcpmux-bench-echo) and runs every
# scenario. The table is printed and written to target/bench-results/latest.md.
#
#   bench/run.sh                         # everything, 5 s per load run (about 3 minutes)
#   bench/run.sh --duration 1 --warmup 0.2 --scenarios s1,s3   # quicker, a subset
#
# Extra arguments go to `mcpmux-bench run` (see `target/release/mcpmux-bench --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v taskset >/dev/null 2>&1 || echo "run.sh: taskset not found (Debian: util-linux); processes will not be pinned" >&2
case " $* " in
  *" --scenarios "*) case "$*" in *s6*) bench/peers.sh ;; esac ;;
  *) bench/peers.sh ;;
esac
cargo build --release --bins
mkdir -p target/bench-results
exec target/release/mcpmux-bench run --out target/bench-results/latest.md "$@"
