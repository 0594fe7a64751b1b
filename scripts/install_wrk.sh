#!/usr/bin/env bash
# Install wrk (a C HTTP load generator) idempotently, for the `POST /verify` figures of `make bench`.
#
# The load generator shares the 2 cores with the server, so it must be cheap: wrk drives ~1,000 req/s on a
# few per cent of a core where an asyncio httpx client takes a whole one. Like install_promtool.sh this only
# downloads Debian's .debs (wrk and the LuaJIT library it links) and extracts them under DEST: nothing is
# installed system-wide. DEST/wrk is a wrapper that points the loader at the extracted library.
#
# Usage: scripts/install_wrk.sh [DEST_DIR]     (default /usr/local/bin; `make bench` passes .venv/bin)
# apt-get update (only run when the package lists lack `wrk`) needs root.
set -euo pipefail

DEST="${1:-/usr/local/bin}"

if [[ -x "$DEST/wrk" ]]; then
  echo "wrk already installed: $DEST/wrk"
  exit 0
fi
if command -v wrk >/dev/null 2>&1; then
  echo "wrk already installed: $(command -v wrk)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_wrk: apt-get not found; install wrk from your distribution" >&2
  exit 1
fi

if ! apt-cache policy wrk 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  apt-get update -qq
fi

LIB="$(cd "$DEST/.." && pwd)/lib/wrk"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(
  cd "$work"
  # apt-get download runs as the _apt user when it can; let it write here.
  chmod 0777 "$work"
  apt-get download -qq wrk libluajit-5.1-2 libluajit-5.1-common
  for deb in ./*.deb; do dpkg -x "$deb" root; done
)
install -d "$DEST" "$LIB"
install -m 0755 "$work/root/usr/bin/wrk" "$LIB/wrk"
cp -a "$work"/root/usr/lib/*/libluajit-5.1.so.2* "$LIB/"
cat >"$DEST/wrk" <<WRAPPER
#!/bin/sh
LD_LIBRARY_PATH="$LIB\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$LIB/wrk" "\$@"
WRAPPER
chmod 0755 "$DEST/wrk"
echo "installed $("$DEST/wrk" --version 2>&1 | head -n1 | cut -d' ' -f1-2) to $DEST/wrk"
