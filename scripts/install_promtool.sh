#!/usr/bin/env bash
# Install promtool (Prometheus rule checker) idempotently, for `promtool check rules` / `promtool test rules`
# in tests/unit/test_monitoring.py.
#
# Debian's `prometheus` package ships promtool. Installing that package would also install (and on
# systemd hosts start) a Prometheus server, so we only download the .deb and extract the one binary:
# nothing is configured, no service is started, no dependencies are pulled (promtool is a static Go binary).
#
# Usage: scripts/install_promtool.sh [DEST_DIR]     (default /usr/local/bin; `make install` passes .venv/bin)
# apt-get update (only run when the package lists lack `prometheus`) needs root.
set -euo pipefail

DEST="${1:-/usr/local/bin}"

if [[ -x "$DEST/promtool" ]]; then
  echo "promtool already installed: $DEST/promtool"
  exit 0
fi
if command -v promtool >/dev/null 2>&1; then
  echo "promtool already installed: $(command -v promtool)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_promtool: apt-get not found; install promtool from your distribution" >&2
  exit 1
fi

if ! apt-cache policy prometheus 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  apt-get update -qq
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(
  cd "$work"
  # apt-get download runs as the _apt user when it can; let it write here.
  chmod 0777 "$work"
  apt-get download -qq prometheus
  dpkg -x prometheus_*.deb root
)
install -d "$DEST"
install -m 0755 "$work/root/usr/bin/promtool" "$DEST/promtool"
echo "installed $("$DEST/promtool" --version 2>&1 | head -n1) to $DEST/promtool"
