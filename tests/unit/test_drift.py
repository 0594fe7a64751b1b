"""Drift: each type alone and combined, the level boundaries, rotation-aware signature drift, metrics,
baselines from a real SQLite registry, and the drift check that never fails."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from core.drift import (
    DRIFT_EVENT,
    DriftLevel,
    DriftType,
    Snapshot,
    analyse_drift,
    detect_drift,
    drift_check,
    drift_event,
    is_recorded_successor,
    level_for,
    pick_baseline,
    snapshot_of_proof,
    with_drift,
)
from core.errors import InvalidInputError
from core.keyring import HistoryEvent, Keyring, KeyringEntry
from core.keys import KeyStatus
from core.metrics import REGISTRY
from core.modes import CheckStatus, EnforcementMode
from core.proof import proof_file_bytes
from core.registry import Registry
from core.reverify import entry_drift, reverify_entry, run_row
from core.signing import Ed25519Signer
from core.verify import verify_proof
from tests.world import NOW, World

SIGNERS = {
    name: Ed25519Signer.from_seed(bytes([i]) * 32) for i, name in enumerate(["k1", "k2", "k3", "k4"], 1)
}
K1, K2, K3, K4 = (SIGNERS[n].kid for n in ("k1", "k2", "k3", "k4"))


def _entry(name: str, status: KeyStatus = KeyStatus.ACTIVE) -> KeyringEntry:
    return KeyringEntry(
        kid=SIGNERS[name].kid,
        public_key=SIGNERS[name].public_key_b64,
        status=status,
        valid_from="2025-01-01T00:00:00Z",
        valid_to="2030-01-01T00:00:00Z",
    )


def _event(version: int, action: str, kid: str, old: str | None = None) -> HistoryEvent:
    detail = f"old={old} new={kid}" if old else None
    return HistoryEvent(
        version=version, action=action, actor="test", at="2026-01-01T00:00:00Z", kid=kid, detail=detail
    )


# k1 bootstrapped, rotated to k2 (the history core.rotation writes); k3 sits in the keyring without any
# recorded rotation; k4 is not in the keyring at all.
ROTATED = Keyring(
    version=5,
    default_signing_kid=K2,
    keys=(_entry("k1", KeyStatus.RETIRED), _entry("k2"), _entry("k3")),
    history=(
        _event(1, "bootstrap", K1),
        _event(2, "prepare", K2, K1),
        _event(3, "dual-accept", K2, K1),
        _event(4, "sign-switch", K2, K1),
        _event(5, "decommission", K2, K1),
    ),
)

BASE = Snapshot(
    source="baseline",
    subject="LEI-TEST",
    created_at="2026-03-01T00:00:00Z",
    policy_hash="0x" + "aa" * 32,
    company_root="0x" + "c0" * 32,
    supplier_root="0x" + "50" * 32,
    ubo_root="0x" + "b0" * 32,
    kid=K1,
    signature_valid=True,
)


def after(hours: float) -> str:
    return _at(timedelta(hours=hours))


def _at(delta: timedelta) -> str:
    start = datetime.fromisoformat(BASE.created_at)
    return (start + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def cur(**update: object) -> Snapshot:
    update.setdefault("created_at", after(24))
    return BASE.model_copy(update={"source": "current", **update})


POLICY = {"policy_hash": "0x" + "ab" * 32}
SUPPLIERS = {"supplier_root": "0x" + "51" * 32, "company_root": "0x" + "c1" * 32}
BOTH_ROOTS = {**SUPPLIERS, "ubo_root": "0x" + "b1" * 32}
UNRELATED = {"kid": K3}

CASES = [
    # one type alone
    pytest.param(cur(), 0, DriftLevel.LOW, set(), id="none"),
    pytest.param(cur(**POLICY), 40, DriftLevel.MEDIUM, {"policy"}, id="policy_alone"),
    pytest.param(cur(**SUPPLIERS), 15, DriftLevel.LOW, {"root"}, id="one_root_half"),
    pytest.param(cur(**BOTH_ROOTS), 30, DriftLevel.MEDIUM, {"root"}, id="both_roots"),
    pytest.param(
        cur(supplier_root=None, ubo_root=None, company_root="0x" + "c1" * 32),
        30,
        DriftLevel.MEDIUM,
        {"root"},
        id="only_company_root_known_differs",
    ),
    pytest.param(
        cur(supplier_root=None, ubo_root=None), 0, DriftLevel.LOW, set(), id="only_company_root_same"
    ),
    pytest.param(cur(created_at=after(24)), 0, DriftLevel.LOW, set(), id="gap_exactly_expected"),
    pytest.param(cur(created_at=after(36)), 10, DriftLevel.LOW, {"timestamp"}, id="gap_half_over"),
    pytest.param(cur(created_at=after(27)), 3, DriftLevel.LOW, {"timestamp"}, id="gap_2_5_points_rounds_up"),
    pytest.param(cur(created_at=after(48)), 20, DriftLevel.LOW, {"timestamp"}, id="gap_double"),
    pytest.param(cur(created_at=after(500)), 20, DriftLevel.LOW, {"timestamp"}, id="gap_clamped_to_1"),
    pytest.param(cur(created_at=after(-1)), 20, DriftLevel.LOW, {"timestamp"}, id="time_backwards"),
    pytest.param(cur(created_at=after(0)), 0, DriftLevel.LOW, set(), id="same_instant"),
    pytest.param(cur(signature_valid=False), 10, DriftLevel.LOW, {"signature"}, id="signature_invalid"),
    pytest.param(cur(kid=None, signature_valid=False), 10, DriftLevel.LOW, {"signature"}, id="unsigned"),
    pytest.param(cur(kid=K4), 10, DriftLevel.LOW, {"signature"}, id="unknown_kid"),
    pytest.param(cur(**UNRELATED), 10, DriftLevel.LOW, {"signature"}, id="unrelated_kid"),
    pytest.param(cur(kid=K2), 0, DriftLevel.LOW, set(), id="rotation_successor_scores_0"),
    # combinations and the level boundaries
    pytest.param(
        cur(**SUPPLIERS, **UNRELATED, created_at=_at(timedelta(hours=28, minutes=48))),
        29,
        DriftLevel.LOW,
        {"root", "signature", "timestamp"},
        id="boundary_29_low",
    ),
    pytest.param(
        cur(**SUPPLIERS, **UNRELATED, created_at=after(30)),
        30,
        DriftLevel.MEDIUM,
        {"root", "signature", "timestamp"},
        id="boundary_30_medium",
    ),
    pytest.param(
        cur(**POLICY, created_at=after(48)),
        60,
        DriftLevel.MEDIUM,
        {"policy", "timestamp"},
        id="boundary_60_medium",
    ),
    pytest.param(
        cur(**POLICY, **SUPPLIERS, created_at=_at(timedelta(hours=31, minutes=12))),
        61,
        DriftLevel.HIGH,
        {"policy", "root", "timestamp"},
        id="boundary_61_high",
    ),
    pytest.param(
        cur(**POLICY, **BOTH_ROOTS, created_at=after(-5), kid=K4),
        100,
        DriftLevel.HIGH,
        {"policy", "root", "timestamp", "signature"},
        id="everything",
    ),
]


@pytest.mark.parametrize(("current", "score", "level", "types"), CASES)
def test_score_level_and_drifted_types(current, score, level, types):
    report = analyse_drift(BASE, current, keyring=ROTATED)
    assert (report.score, report.level) == (score, level)
    assert {i.type.value for i in report.drifted_items} == types
    assert report.drifted is bool(types)
    assert [i.type for i in report.items] == list(DriftType)  # every type explained, drifted or not
    assert all(i.reason for i in report.items)
    assert sum(i.points for i in report.items) == pytest.approx(score, abs=0.5)


@pytest.mark.parametrize(
    ("score", "level"), [(0, "low"), (29, "low"), (30, "medium"), (60, "medium"), (61, "high"), (100, "high")]
)
def test_level_boundaries(score, level):
    assert level_for(score).value == level


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(K1, K2, True, id="successor"),
        pytest.param(K2, K1, False, id="predecessor_is_not_a_successor"),
        pytest.param(K1, K3, False, id="in_keyring_without_rotation"),
        pytest.param(K1, K4, False, id="unknown"),
        pytest.param(K4, K2, False, id="baseline_key_unknown"),
    ],
)
def test_recorded_successor(old, new, expected):
    assert is_recorded_successor(ROTATED, old, new) is expected


def test_rotation_chains_count_and_other_history_does_not():
    chained = ROTATED.model_copy(
        update={"version": 6, "history": (*ROTATED.history, _event(6, "prepare", K3, K2))}
    )
    assert is_recorded_successor(chained, K1, K3) and is_recorded_successor(chained, K2, K3)
    assert not is_recorded_successor(chained, K3, K1)
    revoke_only = ROTATED.model_copy(
        update={"version": 6, "history": (*ROTATED.history, _event(6, "revoke", K3))}
    )
    assert not is_recorded_successor(revoke_only, K1, K3)


def test_an_unsigned_baseline_has_no_key_to_compare_with():
    unsigned = BASE.model_copy(update={"kid": None, "signature_valid": False})
    item = analyse_drift(unsigned, cur(kid=K2), keyring=ROTATED).items[3]
    assert item.weight == 0 and "unsigned" in item.reason
    assert analyse_drift(unsigned, cur(kid=K2, signature_valid=False), keyring=ROTATED).score == 10


def test_revoked_successor_drifts():
    keys = tuple(
        e.model_copy(update={"status": KeyStatus.REVOKED}) if e.kid == K2 else e for e in ROTATED.keys
    )
    keyring = ROTATED.model_copy(update={"keys": keys, "default_signing_kid": K3})
    assert analyse_drift(BASE, cur(kid=K2), keyring=keyring).score == 10


def test_without_a_keyring_only_the_same_key_is_trusted():
    assert analyse_drift(BASE, cur(), keyring=None).score == 0
    item = analyse_drift(BASE, cur(kid=K2), keyring=None).items[3]
    assert item.weight == 1.0 and "no keyring" in item.reason


def test_items_explain_baseline_and_current_values():
    report = analyse_drift(BASE, cur(**POLICY, **BOTH_ROOTS, created_at=after(-2), kid=K3), keyring=ROTATED)
    policy, root, ts, sig = report.items
    assert policy.baseline == {"policy_hash": BASE.policy_hash} and policy.current == POLICY
    assert root.baseline == {"supplier_root": BASE.supplier_root, "ubo_root": BASE.ubo_root}
    assert "supplier_root and ubo_root changed" in root.reason
    assert ts.current == {"created_at": after(-2)} and "backwards" in ts.reason
    assert sig.baseline == {"kid": K1} and sig.current == {"kid": K3} and "unrelated" in sig.reason
    assert report.model_dump(by_alias=True)["schema"] == "cap-drift.v1"


def test_expected_gap_is_configurable():
    assert (
        analyse_drift(BASE, cur(created_at=after(3)), keyring=None, expected_gap=timedelta(hours=2)).score
        == 10
    )
    with pytest.raises(InvalidInputError):
        analyse_drift(BASE, cur(), keyring=None, expected_gap=timedelta(0))


def test_different_subjects_are_refused():
    with pytest.raises(InvalidInputError, match="subject"):
        analyse_drift(BASE, cur(subject="LEI-OTHER"), keyring=None)


# --- never blocking: the drift check, the event ------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "status"),
    [
        pytest.param(cur(), CheckStatus.OK, id="no_drift_ok"),
        pytest.param(cur(**SUPPLIERS), CheckStatus.OK, id="low_ok"),
        pytest.param(cur(**POLICY), CheckStatus.WARN, id="medium_warns"),
        pytest.param(cur(**POLICY, **BOTH_ROOTS), CheckStatus.WARN, id="high_warns_never_fails"),
    ],
)
def test_drift_check_is_ok_or_warn(current, status):
    check = drift_check(analyse_drift(BASE, current, keyring=ROTATED))
    assert check.kind.value == "drift" and check.status is status


def test_drift_raises_a_report_to_warn_but_never_to_fail():
    w = World()
    report = verify_proof(
        w.build().proof, keyring=w.keyring, mode=EnforcementMode.STRICT, now=NOW, trust=w.trust
    )
    assert report.result is CheckStatus.OK
    high = analyse_drift(BASE, cur(**POLICY, **BOTH_ROOTS), keyring=ROTATED)
    assert with_drift(report, high).result is CheckStatus.WARN
    assert with_drift(report, None).checks[-1].message.startswith("no baseline")


def test_event_names_the_company_root_and_carries_the_items():
    report = analyse_drift(BASE, cur(**POLICY, **SUPPLIERS), keyring=ROTATED)
    event = drift_event(report)
    assert event.event == DRIFT_EVENT == "cap.drift.detected"
    assert event.resource["prefect.resource.id"] == f"cap.company.{SUPPLIERS['company_root']}"
    assert event.payload["score"] == 55 and event.payload["level"] == "medium"
    assert [i["type"] for i in event.payload["items"]] == ["policy", "root"]


# --- metrics -----------------------------------------------------------------------------------------------


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_detect_drift_meters_every_analysis():
    before = {t: _sample("cap_drift_by_type_total", drift_type=t.value) for t in DriftType}
    detected, runs = _sample("cap_drift_detected_total"), _sample("cap_drift_analysis_duration_seconds_count")
    detect_drift(BASE, cur(**POLICY, created_at=after(48)), keyring=ROTATED)
    detect_drift(BASE, cur(), keyring=ROTATED)
    assert REGISTRY.get_sample_value("cap_drift_severity_score") is None  # state, not left by an analysis
    assert _sample("cap_drift_detected_total") == detected + 1
    assert _sample("cap_drift_analysis_duration_seconds_count") == runs + 2
    after_ = {t: _sample("cap_drift_by_type_total", drift_type=t.value) for t in DriftType}
    assert {t.value: after_[t] - before[t] for t in DriftType} == {
        "policy": 1,
        "root": 0,
        "timestamp": 1,
        "signature": 0,
    }


# --- real proofs and a real SQLite registry ---------------------------------------------------------


def test_snapshot_of_a_proof_checks_its_signature():
    w = World()
    proof = w.build().proof
    snap = snapshot_of_proof(proof, "p.json", w.keyring)
    assert snap.kid == w.signer.kid and snap.signature_valid is True and snap.subject == "LEI-TEST"
    forged = proof.model_copy(update={"created_at": "2026-03-02T12:00:00Z"})
    assert snapshot_of_proof(forged, "p.json", w.keyring).signature_valid is False
    assert analyse_drift(snap, snapshot_of_proof(forged, "f", w.keyring), keyring=w.keyring).score == 10
    assert snapshot_of_proof(proof, "p.json", None).signature_valid is None


def _register(registry: Registry, w: World, when, accepted=True):
    proof = w.build().proof
    m = proof.manifest
    return registry.register(
        proof_file_bytes(proof),
        b"{}",
        subject=m.subject,
        policy_hash=m.policy.hash,
        ir_hash=proof.ir_hash,
        company_root=m.company_commitment_root,
        supplier_root=m.supplier_root,
        ubo_root=m.ubo_root,
        result="OK",
        accepted=accepted,
        signer=w.signer,
        now=when,
    )


def test_baseline_is_the_last_accepted_older_entry_of_the_subject(tmp_path):
    w = World()
    changed = World(suppliers_csv=World.suppliers_csv + "Baltic Parts,LT,1\n")
    with Registry(tmp_path / "registry.sqlite") as registry:
        first = _register(registry, w, NOW)
        rejected = _register(registry, w, NOW + timedelta(hours=1), accepted=False)
        second = _register(registry, changed, NOW + timedelta(hours=30))
        entries = registry.entries()
    assert pick_baseline(entries, "LEI-TEST", entry_id=second.id).id == first.id
    assert pick_baseline(entries, "LEI-TEST", entry_id=rejected.id).id == first.id
    assert pick_baseline(entries, "LEI-TEST", entry_id=first.id) is None
    assert pick_baseline(entries, "LEI-TEST", proof_hash=second.proof_hash).id == first.id
    assert pick_baseline(entries, "LEI-TEST", proof_hash=first.proof_hash) is None  # never its own copy
    assert pick_baseline(entries, "LEI-TEST", proof_hash="sha3-256:" + "0" * 64).id == second.id
    assert pick_baseline(entries, "LEI-OTHER", entry_id=second.id) is None

    report = reverify_entry(
        second,
        keyring=w.keyring,
        sanctions_root=w.lists.root_hex,
        trust=w.trust,
        mode=EnforcementMode.STRICT,
        now=NOW,
    )
    assert report.result is CheckStatus.OK, report.checks
    drift = entry_drift(second, entries, report, keyring=w.keyring)
    assert drift.score == 15 + 5  # supplier root changed; gap 30 h over 24 h → 0.25 × 20
    assert {i.type for i in drift.drifted_items} == {DriftType.ROOT, DriftType.TIMESTAMP}
    row = run_row(second, report, drift)
    assert row["drift_score"] == 20 and row["result"] == "OK" and row["baseline"] == f"registry:{first.id}"
    assert entry_drift(first, entries, report, keyring=w.keyring) is None


def test_reverify_warns_when_the_lists_moved_on(tmp_path):
    w = World()
    with Registry(tmp_path / "registry.sqlite") as registry:
        entry = _register(registry, w, NOW)
    report = reverify_entry(
        entry,
        keyring=w.keyring,
        sanctions_root="0x" + "11" * 32,
        trust=w.trust,
        mode=EnforcementMode.STRICT,
        now=NOW,
    )
    lists = next(c for c in report.checks if c.id == "current_lists")
    assert lists.status is CheckStatus.WARN and report.result is CheckStatus.WARN


def test_a_real_rotation_makes_the_new_key_a_successor():
    from core.keyring import entry_from_metadata
    from core.keys import build_metadata
    from core.rotation import make_request, plan

    w = World()
    new = Ed25519Signer.from_seed(bytes([9]) * 32)
    pending = entry_from_metadata(
        build_metadata(new.public_key_b64, "Test Co", NOW), status=KeyStatus.PENDING
    )
    keyring = plan(w.keyring, make_request(0, new_kid=new.kid), NOW, new_entry=pending).after
    for phase in (1, 2):
        keyring = plan(keyring, make_request(phase, force=True), NOW).after
    assert keyring.default_signing_kid == new.kid
    old_proof = w.build().proof
    w.signer = new
    new_proof = w.build().proof
    drift = analyse_drift(
        snapshot_of_proof(old_proof, "old", keyring),
        snapshot_of_proof(new_proof, "new", keyring),
        keyring=keyring,
    )
    assert drift.score == 0 and "recorded successor" in drift.items[3].reason
    stranger = Ed25519Signer.from_seed(bytes([10]) * 32)
    w.signer = stranger
    assert (
        analyse_drift(
            snapshot_of_proof(old_proof, "old", keyring),
            snapshot_of_proof(w.build().proof, "x", keyring),
            keyring=keyring,
        ).score
        == 10
    )
