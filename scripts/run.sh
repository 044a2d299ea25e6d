#!/usr/bin/env bash
# The main job on a fresh machine: `schedule-sync serve` on the example
# project. Unless TEMPORAL_ADDRESS names a server, it first starts a local
# Temporal dev server (the pinned CLI, built into a cache folder outside the
# repository) on a free loopback port with a throwaway database, and stops it
# on exit. Ctrl-C (or SIGTERM) stops both.
#
#   scripts/run.sh [PROJECT_DIR [ENVIRONMENT]] [serve flags...]   e.g. --listen 127.0.0.1:9090
#
# ENVIRONMENT is one that the project's project.yaml declares (the example's
# are staging and production; staging by default), or SCHEDULE_SYNC_ENV. The
# local dev server gets every namespace that project.yaml names.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
project="${1:-examples/billing}"
shift || true
if [[ $# -gt 0 && "$1" != -* ]]; then
  export SCHEDULE_SYNC_ENV="$1"
  shift
fi
if [[ -z "${SCHEDULE_SYNC_ENV:-}" && "$project" == examples/billing ]]; then
  export SCHEDULE_SYNC_ENV=staging
fi

cargo build --locked --release --quiet --features cli
binary="$root/target/release/schedule-sync"

if [[ -z "${TEMPORAL_ADDRESS:-}" ]]; then
  cli=$(scripts/install-temporal-cli.sh)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $(( 20000 + RANDOM % 20000 )))
  data=$(mktemp -d)
  # The namespaces of the project's environments (`namespace:` lines).
  namespaces=()
  while read -r namespace; do
    namespaces+=(--namespace "$namespace")
  done < <(sed -n 's/^[[:space:]]\{1,\}namespace:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$project/project.yaml" 2>/dev/null | tr -d "\"'")
  "$cli" server start-dev --headless --ip 127.0.0.1 --port "$port" \
    --db-filename "$data/temporal.db" --log-level error \
    --search-attribute ScheduleSyncFingerprint=Keyword "${namespaces[@]}" >"$data/server.log" 2>&1 &
  server=$!
  trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$data"' EXIT
  export TEMPORAL_ADDRESS="127.0.0.1:$port"
  for _ in $(seq 1 150); do
    if "$cli" operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; then
      break
    fi
    if ! kill -0 "$server" 2>/dev/null; then
      echo "the Temporal dev server did not start:" >&2
      cat "$data/server.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "Temporal dev server on $TEMPORAL_ADDRESS (stopped when this script ends)"
else
  echo "Temporal at $TEMPORAL_ADDRESS"
fi

if [[ -n "${SCHEDULE_SYNC_ENV:-}" ]]; then
  echo "environment $SCHEDULE_SYNC_ENV of $project"
fi
# Not exec: the trap above must stop the dev server after serve exits.
"$binary" serve "$project" "$@" &
serve=$!
trap 'kill -TERM "$serve" 2>/dev/null' INT TERM
status=0
while kill -0 "$serve" 2>/dev/null; do
  # A trapped signal interrupts `wait`; go on waiting for serve to finish.
  if wait "$serve"; then status=0; else status=$?; fi
done
exit "$status"
