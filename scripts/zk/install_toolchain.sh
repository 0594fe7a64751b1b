#!/usr/bin/env bash
# Install the pinned zero-knowledge toolchain (circom2 compiler, snarkjs prover, circomlib gadgets, circomlibjs)
# from npm exactly as package-lock.json records it. Idempotent: skips when node_modules matches the lock file.
# Install scripts are not run (none is needed; blake-hash's native build is optional and unused).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "install_toolchain: node and npm are required (Debian: apt-get install -y nodejs npm)" >&2
    exit 1
fi
stamp=node_modules/.cap-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
echo "installed zk toolchain: $(node -p 'require("./node_modules/snarkjs/package.json").version') snarkjs, circom2 $(node -p 'require("./node_modules/circom2/package.json").version')"
