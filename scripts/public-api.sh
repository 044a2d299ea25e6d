#!/usr/bin/env bash
# Checks the committed listing of the crate's public API against the code:
# rustdoc's JSON (an unstable output of the stable toolchain, turned on with
# RUSTC_BOOTSTRAP=1) made into a sorted listing by scripts/public_api.py, for
# the default features (api/public-api.txt) and for every feature
# (api/public-api-all-features.txt). A difference fails with the diff.
#
#   scripts/public-api.sh           check
#   scripts/public-api.sh --bless   rewrite the listings after a deliberate change
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
bless=false
[[ "${1:-}" == "--bless" ]] && bless=true
listing=$(mktemp)
trap 'rm -f "$listing"' EXIT
failed=false

for features in default all; do
  if [[ $features == default ]]; then
    file=api/public-api.txt
    flags=()
  else
    file=api/public-api-all-features.txt
    flags=(--all-features)
  fi
  RUSTC_BOOTSTRAP=1 cargo rustdoc --locked --quiet --lib "${flags[@]}" -- \
    -Z unstable-options --output-format json --document-hidden-items
  python3 scripts/public_api.py "$target/doc/schedule_sync.json" >"$listing"
  if $bless; then
    cp "$listing" "$file"
    echo "wrote $file"
  elif ! diff -u "$file" "$listing"; then
    echo "the public API ($features features) differs from $file (above: - committed, + code)." >&2
    echo "If the change is meant, refresh the listing with: scripts/public-api.sh --bless" >&2
    failed=true
  fi
done
if $failed; then
  exit 1
fi
echo "the public API matches api/public-api.txt and api/public-api-all-features.txt"
