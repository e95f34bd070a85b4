#!/usr/bin/env bash
# The one release build of mcpmux. The Dockerfile runs it to build the image's binary and CI
# (.ci/run) runs it too, so the image holds exactly what CI built and tested.
#
#   scripts/build-release.sh [--out DIR]   build the release binary (Cargo.lock as is) and, with
#                                          --out, copy it to DIR/mcpmux
#   scripts/build-release.sh --deps-only   compile only the dependencies, in a directory that has
#                                          Cargo.toml and Cargo.lock but no sources yet (the
#                                          Dockerfile's cached layer); the crate's own stub
#                                          sources and artifacts are removed afterwards
#
# MCPMUX_BUILD_COMMIT is compiled in (shown by `mcpmux --version` and in /status). When it is not
# set and this is a git checkout, it is the current commit (with "-dirty" for uncommitted
# changes); set it to an empty string for none. The Docker build passes it as a build argument.
set -euo pipefail
cd "$(dirname "$0")/.."

# The flags of every release build: the dependency layer must use the same ones, or its
# artifacts would not be reused.
CARGO_FLAGS=(--release --locked --bin mcpmux)

deps_only=false
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --deps-only) deps_only=true ;;
    --out) out="${2:?--out needs a directory}"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "build-release.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

command -v cargo >/dev/null 2>&1 || { echo "build-release.sh: cargo is not installed" >&2; exit 1; }

if $deps_only; then
  if [ -e src ]; then
    echo "build-release.sh: --deps-only is for a directory without sources yet (src/ exists)" >&2
    exit 2
  fi
  # A stub for every target Cargo.toml declares ([lib], [[bin]], [[bench]], [[test]],
  # [[example]], with their explicit or default paths), so that the manifest loads: an empty
  # library, and `fn main() {}` for the rest.
  targets="$(awk '
    function flush() {
      if (section == "[lib]") print (path != "" ? path : "src/lib.rs") " lib"
      else if (section == "[[bin]]") print (path != "" ? path : (name == package ? "src/main.rs" : "src/bin/" name ".rs")) " main"
      else if (section == "[[bench]]") print (path != "" ? path : "benches/" name ".rs") " main"
      else if (section == "[[test]]") print (path != "" ? path : "tests/" name ".rs") " main"
      else if (section == "[[example]]") print (path != "" ? path : "examples/" name ".rs") " main"
    }
    /^\[/ { flush(); section = $0; name = ""; path = ""; next }
    /^name *=/ { v = $0; sub(/^[^"]*"/, "", v); sub(/".*$/, "", v); if (section == "[package]") package = v; else name = v }
    /^path *=/ { v = $0; sub(/^[^"]*"/, "", v); sub(/".*$/, "", v); path = v }
    END { flush() }
  ' Cargo.toml)"
  [ -n "$targets" ] || { echo "build-release.sh: no targets found in Cargo.toml" >&2; exit 1; }
  stub_dirs=()
  while read -r path kind; do
    [ -e "${path%%/*}" ] || stub_dirs+=("${path%%/*}")
    mkdir -p "$(dirname "$path")"
    if [ "$kind" = lib ]; then echo '' > "$path"; else echo 'fn main() {}' > "$path"; fi
  done <<< "$targets"
  cargo build "${CARGO_FLAGS[@]}"
  [ ${#stub_dirs[@]} -eq 0 ] || rm -rf "${stub_dirs[@]}"
  # Forget the stub crate, so the real sources are always compiled whatever their timestamps.
  rm -rf target/release/.fingerprint/mcpmux-* target/release/deps/mcpmux-* target/release/deps/libmcpmux-* \
    target/release/mcpmux target/release/mcpmux.d target/release/libmcpmux.*
  exit 0
fi

if [ -z "${MCPMUX_BUILD_COMMIT+set}" ] && command -v git >/dev/null 2>&1 && git rev-parse --git-dir >/dev/null 2>&1; then
  MCPMUX_BUILD_COMMIT="$(git rev-parse --short=12 HEAD)"
  git diff --quiet HEAD -- 2>/dev/null || MCPMUX_BUILD_COMMIT="${MCPMUX_BUILD_COMMIT}-dirty"
fi
export MCPMUX_BUILD_COMMIT="${MCPMUX_BUILD_COMMIT:-}"
echo "build-release.sh: building mcpmux (commit: ${MCPMUX_BUILD_COMMIT:-unknown})"
cargo build "${CARGO_FLAGS[@]}"

binary=target/release/mcpmux
"$binary" --version
if [ -n "$out" ]; then
  mkdir -p "$out"
  cp "$binary" "$out/mcpmux"
  chmod 0755 "$out/mcpmux"
  echo "build-release.sh: $out/mcpmux"
fi
