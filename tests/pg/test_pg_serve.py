"""``CAP_DATABASE_URL=postgresql://… cap serve --no-prefect`` serves on PostgreSQL: its stores are created in
the database (not under the data dir), a proof another node registered there is found by ``POST /verify``,
and the readiness probe reads the schema versions from the database."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import httpx

from core import service
from core.modes import CheckStatus
from core.proof import proof_file_bytes
from core.settings import Settings
from core.store.postgres.db import close_all
from tests.live import cap_serve_command, dev_token, free_port, serving
from tests.world import World


def test_cap_serve_on_postgresql_verifies_against_the_shared_registry(tmp_path, pg_url):
    env = {**os.environ, "CAP_DATA_DIR": str(tmp_path / "node"), "CAP_DATABASE_URL": pg_url, "NO_COLOR": "1"}
    for var in ("PREFECT_API_URL", "CAP_JWKS_URL", "CAP_JWKS_FILE"):
        env.pop(var, None)
    port = free_port()
    with serving(cap_serve_command(port), env, port) as base:
        ready = httpx.get(f"{base}/readyz", timeout=10).json()
        checks = {c["name"]: c for c in ready["checks"]}
        assert checks["registry"]["message"] == checks["policy_store"]["message"] == "schema version 1"
        assert not (tmp_path / "node" / "registry.sqlite").exists()
        assert not (tmp_path / "node" / "policies.sqlite").exists()

        settings = Settings.from_env(env)  # another writer on the same database, as another node would be
        signer = service.default_signer(settings)
        built = World(signer=signer).build()
        entry = service.register_proof(settings, built.proof, CheckStatus.OK, signer, datetime.now(UTC))
        close_all()

        headers = {"Authorization": f"Bearer {dev_token(env, ['verify:run'])}"}
        body = {"proof": json.loads(proof_file_bytes(built.proof))}
        report = httpx.post(f"{base}/verify", json=body, headers=headers, timeout=30).json()
    registry = next(c for c in report["checks"] if c["id"] == "registry")
    assert (registry["status"], registry["message"]) == ("ok", f"registered as {entry.id}")
    assert entry.id == "proof_001"
