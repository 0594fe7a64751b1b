#!/usr/bin/env bash
# Install Debian's PostgreSQL server binaries for the tests that run against a real PostgreSQL (tests/pgserver.py
# starts a throwaway server on a loopback port with a temporary data directory), idempotently.
#
# Installing the `postgresql` package on Debian would also create and start a cluster "main" on port 5432; the
# tests never use it, so cluster creation is switched off first (postgresql-common's createcluster.conf).
# The binaries land in /usr/lib/postgresql/<major>/bin; tests/pgserver.py finds the newest (override: CAP_PG_BINDIR).
#
# Usage: scripts/install_postgres.sh        (called by `make install`)
set -euo pipefail

if [[ -n "${CAP_PG_BINDIR:-}" && -x "${CAP_PG_BINDIR}/postgres" ]]; then
  echo "postgres already installed: ${CAP_PG_BINDIR}/postgres"
  exit 0
fi
for bin in /usr/lib/postgresql/*/bin/postgres; do
  if [[ -x "$bin" ]]; then
    echo "postgres already installed: $bin"
    exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$(basename "$0"): apt-get not found; install the PostgreSQL server (15 or newer) and set CAP_PG_BINDIR" >&2
  exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "$(basename "$0"): the PostgreSQL server is missing and installing it needs root: sudo apt-get install -y postgresql" >&2
  exit 1
fi
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/cap-no-main-cluster.conf
if ! apt-cache policy postgresql 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  apt-get update -qq
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
echo "installed $(ls -d /usr/lib/postgresql/*/bin/postgres | tail -1)"
