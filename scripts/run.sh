#!/usr/bin/env bash
# The main job on a fresh machine: builds schedule-sync and validates the
# example project. (`serve` against a dev server replaces this once the
# runtime component lands.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo run --locked --release --quiet -- validate "${1:-examples/billing}"
