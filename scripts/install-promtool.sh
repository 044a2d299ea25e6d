#!/usr/bin/env bash
# Prints the path of `promtool`, installing Debian's `prometheus` package
# (which ships it) when it is missing. Fails loudly when it cannot: the alert
# rule tests must never be skipped silently.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
  command -v promtool
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "promtool is missing and this machine has no apt-get; install Prometheus's promtool" >&2
  exit 1
fi
as_root=()
if [[ $(id -u) -ne 0 ]]; then
  as_root=(sudo -n)
fi
{
  "${as_root[@]}" apt-get update -qq
  # The package's service is not wanted, only its promtool binary.
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends prometheus
} >&2
command -v promtool
