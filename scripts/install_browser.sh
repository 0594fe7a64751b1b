#!/usr/bin/env bash
# Install Debian's chromium for the real-browser test (tests/ui/), idempotently.
#
# The Python `playwright` package (dev extras) drives it through `executable_path=/usr/bin/chromium`; we never run
# `playwright install`, which downloads its own browser build from the internet (not reachable here, and a second
# browser to keep patched). apt-get needs root; `apt-get update` runs only when the lists lack `chromium`.
#
# Usage: scripts/install_browser.sh        (called by `make install`)
# Override the browser the test uses with CAP_CHROMIUM=/path/to/chromium.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  echo "chromium already installed: $(command -v chromium)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$(basename "$0"): apt-get not found; install chromium from your distribution (tests/ui needs it)" >&2
  exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "$(basename "$0"): chromium is missing and installing it needs root: sudo apt-get install -y chromium" >&2
  exit 1
fi
if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  apt-get update -qq
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "installed $(chromium --version 2>/dev/null || echo chromium) at $(command -v chromium)"
