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
# shellcheck source=scripts/deb_extract.sh
source "$(dirname "${BASH_SOURCE[0]}")/deb_extract.sh"
already_installed promtool "$DEST"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
deb_extract "$work" prometheus
install -d "$DEST"
install -m 0755 "$work/root/usr/bin/promtool" "$DEST/promtool"
echo "installed $("$DEST/promtool" --version 2>&1 | head -n1) to $DEST/promtool"
