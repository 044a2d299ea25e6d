#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the pinned Temporal CLI,
# the pinned Temporal server 1.32 and cargo-deny into a cache folder outside
# the repository (reused when present), then runs formatting, lints, unit,
# integration and doc tests against real Temporal servers (the CLI's dev
# server, 1.29, and 1.32), and the dependency checks.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache="${SCHEDULE_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/schedule-sync}"
export SCHEDULE_SYNC_CACHE="$cache"
# One build per run: incremental state would only cost time and disk.
export CARGO_INCREMENTAL=0

step() { printf '\n== %s\n' "$*"; }

step "Temporal CLI (dev server)"
TEMPORAL_CLI=$(scripts/install-temporal-cli.sh)
export TEMPORAL_CLI
"$TEMPORAL_CLI" --version

step "Temporal server 1.32 (the second server version)"
TEMPORAL_SERVER=$(scripts/install-temporal-server.sh)
export TEMPORAL_SERVER
"$TEMPORAL_SERVER" --version

step "cargo-deny"
deny_version="0.20.2"
deny="$cache/cargo-deny/$deny_version/bin/cargo-deny"
if [[ ! -x "$deny" ]]; then
  cargo install --locked --quiet cargo-deny --version "$deny_version" --root "$cache/cargo-deny/$deny_version"
fi

step "promtool (alert rule tests)"
promtool=$(scripts/install-promtool.sh)
"$promtool" --version | head -1

step "Prometheus alert rules"
"$promtool" check rules deploy/prometheus/schedule-sync.rules.yml
(cd deploy/prometheus && "$promtool" test rules schedule-sync.rules.test.yml)

step "actionlint (the GitHub Actions workflow in deploy/github)"
actionlint_version="1.7.7"
actionlint="$cache/actionlint/v$actionlint_version/actionlint"
if [[ ! -x "$actionlint" ]]; then
  GOBIN="$cache/actionlint/v$actionlint_version" GOFLAGS=-mod=mod \
    go install "github.com/rhysd/actionlint/cmd/actionlint@v$actionlint_version"
fi
"$actionlint" deploy/github/schedule-sync.yml

step "cargo fmt --check"
cargo fmt --all -- --check

step "the library alone: builds and lints without the binary's crates"
cargo clippy --locked --lib -- -D warnings
# None of the command line's crates is a dependency of the library's default build.
cli_crates=$(cargo tree --locked -e normal --no-default-features --depth 1 --prefix none \
  | grep -E '^(clap|clap_complete|clap_mangen|indicatif|tracing-subscriber|anyhow|tempfile|metrics-exporter-prometheus|axum|hyper|hyper-util) ' || true)
if [[ -n "$cli_crates" ]]; then
  echo "the library's default build pulls in crates of the binary:" >&2
  echo "$cli_crates" >&2
  exit 1
fi

step "the public API matches its committed listing (api/), default and all features"
scripts/public-api.sh

step "no cycles between the crate's top-level modules"
python3 scripts/module_cycles.py

step "examples/embed.rs, a host server, builds with the library's default features; the README's examples run"
cargo test --locked --doc embedding

step "cargo clippy"
cargo clippy --locked --all-targets --all-features -- -D warnings

step "cargo test (unit, integration, benches in test mode)"
cargo test --locked --all-targets --all-features

step "cargo test --doc"
cargo test --locked --doc --all-features

step "cargo deny check"
# The advisory database is a git repository on GitHub. Where that host is
# out of reach (this project's CI reaches only package registries) the
# advisories check cannot run; it is then named as skipped, loudly, and the
# licence, ban and source checks still run.
if timeout 60 "$deny" fetch db >/dev/null 2>&1; then
  "$deny" check
else
  echo "NOTE: the RustSec advisory database cannot be fetched from here; advisories NOT checked" >&2
  "$deny" check bans licenses sources
fi

step "all checks passed"
