#!/usr/bin/env bash
# Installs a pinned Temporal server (the second server version the tests run
# against) into a cache folder outside the repository and prints the path of
# the binary. Its module needs a newer Go than many machines carry, so the
# build names the toolchain, which the Go proxy serves on demand.
# Reuses the cached binary when it is already there.
set -euo pipefail

version="${TEMPORAL_SERVER_VERSION:-v1.32.2}"
toolchain="${TEMPORAL_SERVER_GOTOOLCHAIN:-go1.27.3}"
cache="${SCHEDULE_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/schedule-sync}"
bin_dir="$cache/temporal-server/$version/bin"
binary="$bin_dir/temporal-server"

if [[ -x "$binary" ]]; then
  echo "$binary"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-temporal-server: the Go toolchain is needed to build the Temporal server" >&2
  exit 1
fi

mkdir -p "$bin_dir"
started=$(date +%s)
echo "install-temporal-server: building go.temporal.io/server/cmd/server@$version with $toolchain (first run only)" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
GOTOOLCHAIN="$toolchain" GOBIN="$work" GOFLAGS="${GOFLAGS:-} -trimpath" \
  go install "go.temporal.io/server/cmd/server@$version" >&2
# The binary lands under its own name only once it is whole.
mv "$work/server" "$binary"
echo "install-temporal-server: built in $(( $(date +%s) - started )) s" >&2
echo "$binary"
