"""Enforcement at proof build and verify: fail-closed cases by mode, and the cap_enforce_* / cap_verify_*
series they emit (read back from core.metrics.REGISTRY)."""

from __future__ import annotations

import pytest

from core.enforce import note_mode
from core.metrics import REGISTRY
from core.modes import CheckStatus, EnforcementMode
from core.prover import PolicyFailedError
from core.rules import Severity
from core.trust import TrustAnchors
from core.verify import verify_proof
from tests.world import NOW, World

S, R, A = EnforcementMode.STRICT, EnforcementMode.RELAXED, EnforcementMode.AUDIT
LISTED_SUPPLIER = World.suppliers_csv + "Kestrel Maritime Services,GR,1\n"
HIGH_RISK_SUPPLIER = World.suppliers_csv + "Tehran Trading,IR,1\n"


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _enforce_counts() -> dict[str, float]:
    return {r: _sample("cap_enforce_total", result=r) for r in ("success", "warning", "failure")}


def _delta(before: dict[str, float]) -> dict[str, float]:
    return {k: v - before[k] for k, v in _enforce_counts().items() if v != before[k]}


@pytest.mark.parametrize(
    ("world", "mode", "verdict", "violations"),
    [
        pytest.param({}, S, CheckStatus.OK, {}, id="clean_strict"),
        pytest.param(
            {"suppliers_csv": HIGH_RISK_SUPPLIER},
            S,
            CheckStatus.FAIL,
            {"max_high_risk_suppliers": Severity.MEDIUM},
            id="medium_fails_in_strict",
        ),
        pytest.param(
            {"suppliers_csv": HIGH_RISK_SUPPLIER},
            R,
            CheckStatus.WARN,
            {"max_high_risk_suppliers": Severity.MEDIUM},
            id="medium_warns_in_relaxed",
        ),
        pytest.param(
            {"suppliers_csv": LISTED_SUPPLIER},
            R,
            CheckStatus.FAIL,
            {"no_sanctioned_suppliers": Severity.CRITICAL},
            id="critical_fails_in_relaxed",
        ),
        pytest.param(
            {"suppliers_csv": LISTED_SUPPLIER},
            A,
            CheckStatus.WARN,
            {"no_sanctioned_suppliers": Severity.CRITICAL},
            id="critical_is_recorded_in_audit",
        ),
        # fail-closed: a rule that cannot be evaluated is a high violation
        pytest.param(
            {"high_risk": None},
            R,
            CheckStatus.FAIL,
            {"max_high_risk_suppliers": Severity.HIGH},
            id="missing_input_variable_is_high",
        ),
        pytest.param(
            {"with_lists": False},
            R,
            CheckStatus.FAIL,
            {
                "no_sanctioned_suppliers": Severity.CRITICAL,
                "no_sanctioned_ubos": Severity.CRITICAL,
                "require_statement_roots": Severity.HIGH,
            },
            id="missing_list_fails_closed",
        ),
        pytest.param(
            {"with_lists": False},
            A,
            CheckStatus.WARN,
            {
                "no_sanctioned_suppliers": Severity.CRITICAL,
                "no_sanctioned_ubos": Severity.CRITICAL,
                "require_statement_roots": Severity.HIGH,
            },
            id="missing_list_recorded_in_audit",
        ),
    ],
)
def test_build_verdict_violations_and_metrics(world, mode, verdict, violations):
    before = _enforce_counts()
    per_constraint = {c: _sample("cap_enforce_constraint_violations_total", constraint=c) for c in violations}
    runs = _sample("cap_enforce_duration_seconds_count")
    built = World(**world).build(mode)
    assert built.verdict is verdict
    assert {v.constraint: v.severity for v in built.violations} == violations
    result = {CheckStatus.OK: "success", CheckStatus.WARN: "warning", CheckStatus.FAIL: "failure"}[verdict]
    assert _delta(before) == {result: 1}
    assert _sample("cap_enforce_duration_seconds_count") == runs + 1
    for c in violations:
        assert _sample("cap_enforce_constraint_violations_total", constraint=c) == per_constraint[c] + 1


def test_refused_build_is_still_metered():
    before = _enforce_counts()
    with pytest.raises(PolicyFailedError, match="no_sanctioned_suppliers"):
        World(suppliers_csv=LISTED_SUPPLIER).build(S, enforce=True)
    assert _delta(before) == {"failure": 1}


TRUST_NONE = TrustAnchors()  # a proof without lists needs none; its require_statement_roots rule fails


def test_verify_meters_enforcement_by_constraint_and_the_report_result():
    proof = World(with_lists=False, high_risk=None).build(A).proof
    keyring = World().keyring
    stmt = _sample("cap_enforce_constraint_violations_total", constraint="require_statement_roots")
    fails = _sample("cap_verify_results_total", result="fail")
    warns = _sample("cap_verify_results_total", result="warn")
    before = _enforce_counts()
    assert verify_proof(proof, keyring=keyring, mode=S, now=NOW, trust=TRUST_NONE).result is CheckStatus.FAIL
    assert verify_proof(proof, keyring=keyring, mode=A, now=NOW, trust=TRUST_NONE).result is CheckStatus.WARN
    assert _delta(before) == {"failure": 1, "warning": 1}
    assert (
        _sample("cap_enforce_constraint_violations_total", constraint="require_statement_roots") == stmt + 2
    )
    assert _sample("cap_verify_results_total", result="fail") == fails + 1
    assert _sample("cap_verify_results_total", result="warn") == warns + 1


def test_integrity_failure_fails_in_audit_mode_too():
    w = World()
    proof = w.build().proof
    forged = proof.model_copy(update={"public": {**proof.public, "ubo_count": 7}})
    report = verify_proof(forged, keyring=w.keyring, mode=A, now=NOW, trust=w.trust)
    assert report.result is CheckStatus.FAIL and report.integrity_failed


def _changes() -> dict[str, float]:
    return {m.value: _sample("cap_enforce_mode_changes_total", mode=m.value) for m in EnforcementMode}


def test_mode_changes_count_each_switch_per_new_mode():
    note_mode(S)  # whatever ran before in this process, start from strict
    before = _changes()
    assert [note_mode(m) for m in (S, R, R, A, S, S, R)] == [False, True, False, True, True, False, True]
    after = _changes()
    assert {m: after[m] - before[m] for m in after} == {"strict": 1, "relaxed": 2, "audit": 1}


def test_build_and_verify_share_the_mode_change_count():
    w = World()
    note_mode(S)
    before = _changes()
    proof = w.build(R).proof
    verify_proof(proof, keyring=w.keyring, mode=R, now=NOW, trust=w.trust)
    verify_proof(proof, keyring=w.keyring, mode=A, now=NOW, trust=w.trust)
    after = _changes()
    assert {m: after[m] - before[m] for m in after} == {"strict": 0, "relaxed": 1, "audit": 1}
