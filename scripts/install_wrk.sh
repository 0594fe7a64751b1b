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
# shellcheck source=scripts/deb_extract.sh
source "$(dirname "${BASH_SOURCE[0]}")/deb_extract.sh"
already_installed wrk "$DEST"

LIB="$(cd "$DEST/.." && pwd)/lib/wrk"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
deb_extract "$work" wrk libluajit-5.1-2 libluajit-5.1-common
install -d "$DEST" "$LIB"
install -m 0755 "$work/root/usr/bin/wrk" "$LIB/wrk"
cp -a "$work"/root/usr/lib/*/libluajit-5.1.so.2* "$LIB/"
cat >"$DEST/wrk" <<WRAPPER
#!/bin/sh
LD_LIBRARY_PATH="$LIB\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$LIB/wrk" "\$@"
WRAPPER
chmod 0755 "$DEST/wrk"
echo "installed $("$DEST/wrk" --version 2>&1 | head -n1 | cut -d' ' -f1-2) to $DEST/wrk"
