#!/usr/bin/env bash
# Install promtool (Prometheus rule checker) and the prometheus server binary idempotently:
# promtool for `promtool check rules` / `promtool test rules` in tests/unit/test_monitoring.py, prometheus for
# tests/integration/test_prometheus_alerts.py, which starts it on a loopback port against a real `cap serve`.
#
# Debian's `prometheus` package ships both. Installing that package would also install (and on systemd hosts
# start) a Prometheus service, so we only download the .deb and extract the two binaries: nothing is
# configured, no service is started, no dependencies are pulled (both are static Go binaries).
#
# Usage: scripts/install_promtool.sh [DEST_DIR]     (default /usr/local/bin; `make install` passes .venv/bin)
# apt-get update (only run when the package lists lack `prometheus`) needs root.
set -euo pipefail

DEST="${1:-/usr/local/bin}"
# shellcheck source=scripts/deb_extract.sh
source "$(dirname "${BASH_SOURCE[0]}")/deb_extract.sh"

missing=()
for tool in promtool prometheus; do
  if [[ -x "$DEST/$tool" ]] || command -v "$tool" >/dev/null 2>&1; then
    echo "$tool already installed: $(command -v "$tool" || echo "$DEST/$tool")"
  else
    missing+=("$tool")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
deb_extract "$work" prometheus
install -d "$DEST"
for tool in "${missing[@]}"; do
  install -m 0755 "$work/root/usr/bin/$tool" "$DEST/$tool"
  echo "installed $("$DEST/$tool" --version 2>&1 | head -n1) to $DEST/$tool"
done
