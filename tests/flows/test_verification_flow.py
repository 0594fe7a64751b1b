"""The ``verification-run`` flow: one real run on the shared Prefect test server over a real SQLite registry
with a drifted entry (artifact and ``cap.drift.detected`` events checked); the tasks' glue via ``.fn()``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from core import service
from core.keyring import save_keyring
from core.modes import CheckStatus, EnforcementMode
from core.settings import Settings
from core.signing import Ed25519Signer
from tests.world import NOW, POLICY, World

OTHER_POLICY = POLICY.replace("supplier_count_max: 10", "supplier_count_max: 20")
MORE_SUPPLIERS = World.suppliers_csv + "Baltic Parts,LT,1\n"


def _registry(tmp_path) -> tuple[Settings, dict[str, str]]:
    """proof_001 baseline; proof_002 other policy + supplier root (55, medium); proof_003 back to the first
    policy and suppliers, signed by an unrelated key (40 + 15 + 10 = 65, high; its verification fails)."""
    settings = Settings(data_dir=tmp_path / "var", subject="LEI-TEST")
    settings.data_dir.mkdir()
    fresh = datetime.now(UTC)  # the run re-verifies on the real clock: lists built now are fresh
    base = World(lists_built_at=fresh)
    save_keyring(settings.layout.keyring, base.keyring)
    service.install_lists(settings, base.lists_file, fresh)
    drifted = World(policy_text=OTHER_POLICY, suppliers_csv=MORE_SUPPLIERS, lists_built_at=fresh)
    stranger = World(signer=Ed25519Signer.from_seed(bytes([7]) * 32), lists_built_at=fresh)
    roots = {}
    for i, w in enumerate((base, drifted, stranger)):
        built = w.build(EnforcementMode.STRICT)
        entry = service.register_proof(
            settings, built.proof, built.verdict, w.signer, NOW + timedelta(hours=i)
        )
        roots[entry.id] = entry.company_root
    return settings, roots


def _run_name(state) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(state.state_details.flow_run_id).name


@pytest.mark.xdist_group("prefect")
def test_verification_run_publishes_a_table_and_drift_events(prefect_api, tmp_path, captured_events):
    from prefect.artifacts import Artifact

    from flows.verification import verification_run

    settings, roots = _registry(tmp_path)
    state = verification_run(data_dir=str(settings.data_dir), mode=EnforcementMode.STRICT, return_state=True)
    assert _run_name(state).startswith("verify-strict-all-")
    summary = verification_run(data_dir=str(settings.data_dir), mode=EnforcementMode.RELAXED)
    assert summary == {
        "entries": 3,
        "ok": 2,
        "warn": 0,
        "fail": 1,
        "drift_analysed": 2,
        "drift_low": 0,
        "drift_medium": 1,
        "drift_high": 1,
        "drift_alerts": 2,
    }

    artifact = Artifact.get("verification-run")
    rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    by_entry = {r["entry"]: r for r in rows}
    assert list(by_entry) == ["proof_003", "proof_002", "proof_001"]  # newest first
    assert list(rows[0])[:5] == ["result", "failed_checks", "drift_level", "drift_score", "subject"]
    assert by_entry["proof_001"]["drift_score"] is None and by_entry["proof_001"]["result"] == "OK"
    assert (by_entry["proof_002"]["drift_score"], by_entry["proof_002"]["drift_level"]) == (55, "medium")
    assert by_entry["proof_002"]["drift_types"] == "policy, root"
    assert (
        by_entry["proof_003"]["result"] == "FAIL"
        and "proof_signature" in by_entry["proof_003"]["failed_checks"]
    )
    assert (by_entry["proof_003"]["drift_score"], by_entry["proof_003"]["baseline"]) == (
        65,
        "registry:proof_002",
    )
    assert "3 entries re-verified" in artifact.description

    captured_events.wait_until_empty()
    drift_events = [e for e in captured_events._client.events if e.event == "cap.drift.detected"]
    got = {
        e.resource.id: (e.payload["score"], e.payload["level"], [i["type"] for i in e.payload["items"]])
        for e in drift_events
    }
    assert got == {
        f"cap.company.{roots['proof_002']}": (55, "medium", ["policy", "root"]),
        f"cap.company.{roots['proof_003']}": (65, "high", ["policy", "root", "signature"]),
    }
    assert all(e.payload["subject"] == "LEI-TEST" and e.payload["items"][0]["reason"] for e in drift_events)


# --- the task glue without a server ----------------------------------------------------------------------


def test_tasks_chain_through_fn(tmp_path):
    from tasks import verification as t

    settings, _ = _registry(tmp_path)
    entries = t.load_entries.fn(settings)
    trust = t.load_trust.fn(settings)
    assert trust.sanctions_root == World().lists.root_hex and len(entries) == 3
    reports = t.reverify_entries.fn(entries, trust, EnforcementMode.AUDIT, datetime.now(UTC))
    assert [r.result for r in reports] == [CheckStatus.FAIL, CheckStatus.OK, CheckStatus.OK]
    drifts = t.analyse_drift.fn(entries, reports, trust, timedelta(hours=24))
    assert [d.score if d else None for d in drifts] == [65, 55, None]


def test_io_tasks_use_the_shared_retry_condition():
    from tasks import verification as t
    from tasks.retry import retry_transient

    assert t.load_entries.retry_condition_fn is retry_transient and t.load_entries.retries == 3
