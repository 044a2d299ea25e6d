#!/usr/bin/env bash
# Installs the pinned Temporal CLI (which carries the dev server) into a cache
# folder outside the repository and prints the path of the binary.
# Reuses the cached binary when it is already there.
set -euo pipefail

# v1.9.1 is the newest on the module proxy, but its go.mod replaces a nested
# module (cliext) that the proxy does not serve, so `go install` refuses it.
version="${TEMPORAL_CLI_VERSION:-v1.5.1}"
cache="${SCHEDULE_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/schedule-sync}"
bin_dir="$cache/temporal-cli/$version/bin"
binary="$bin_dir/temporal"

if [[ -x "$binary" ]]; then
  echo "$binary"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-temporal-cli: the Go toolchain is needed to build the Temporal CLI" >&2
  exit 1
fi

mkdir -p "$bin_dir"
started=$(date +%s)
echo "install-temporal-cli: building github.com/temporalio/cli/cmd/temporal@$version (first run only)" >&2
GOBIN="$bin_dir" GOFLAGS="${GOFLAGS:-} -trimpath" \
  go install "github.com/temporalio/cli/cmd/temporal@$version" >&2
echo "install-temporal-cli: built in $(( $(date +%s) - started )) s" >&2
echo "$binary"
