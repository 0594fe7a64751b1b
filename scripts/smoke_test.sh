#!/usr/bin/env bash
# Post-deployment smoke test (seed Track A3): a thin wrapper around `cap smoke`.
#
#   scripts/smoke_test.sh --url https://cap-verifier.example.com --token "$TOKEN"
#   scripts/smoke_test.sh --namespace cap-production [--release cap-verifier-api]   # via kubectl port-forward
#   BASE_URL=... OAUTH_TOKEN_URL=... OAUTH_CLIENT_ID=... OAUTH_CLIENT_SECRET=... scripts/smoke_test.sh
#
# Exit codes: 0 all passed, 1 health, 2 readiness, 3 metrics, 4 policy compile, 5 verify, 6 the signed proof
# given with --proof FILE (or CAP_SMOKE_PROOF).
# Every other option is passed to `cap smoke` (see `cap smoke --help`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cap="${CAP:-}"
if [[ -z "$cap" ]]; then
  if command -v cap >/dev/null 2>&1; then cap=cap; else cap="$here/../.venv/bin/cap"; fi
fi

namespace="" release="${RELEASE:-cap-verifier-api}" port="${LOCAL_PORT:-18080}" has_url=0 args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --namespace) namespace="$2"; shift 2 ;;
    --release) release="$2"; shift 2 ;;
    --url) has_url=1; args+=("$1" "$2"); shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done

pf_pid=""
cleanup() { [[ -n "$pf_pid" ]] && kill "$pf_pid" 2>/dev/null || true; }
trap cleanup EXIT

if [[ -n "$namespace" ]]; then
  kubectl --namespace "$namespace" port-forward "svc/$release" "$port:8080" >/dev/null 2>&1 &
  pf_pid=$!
  for _ in $(seq 1 30); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 1
  done
  args=(--url "http://127.0.0.1:$port" "${args[@]}")
elif [[ $has_url -eq 0 && -n "${BASE_URL:-}" ]]; then
  args=(--url "$BASE_URL" "${args[@]}")
fi

set +e
"$cap" smoke "${args[@]}"
rc=$?
set -e
exit "$rc"
