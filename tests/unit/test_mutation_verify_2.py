"""The verifier's summary line, its record of the scheme, policy pins, list trust per rule, and enforcement
metering, as the full mutation run of core/verify.py found them undefended (``make mutation
MODULE=core/verify.py``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core import verify as verify_module
from core.checks import Check, CheckKind
from core.metrics import REGISTRY
from core.modes import CheckStatus, EnforcementMode
from core.trust import PinnedPolicy, TrustAnchors
from core.verify import Report, _differing, summary_line, verify_proof
from tests.world import NOW, World

STRICT, AUDIT = EnforcementMode.STRICT, EnforcementMode.AUDIT
CONTEXT_SUPPLIERS = (
    "name,jurisdiction,tier\nKestrel Maritime Service,NO,1\nPetrov Industrial Holding GmbH,DE,1\n"
    "ACME GmbH,DE,1\n"
)


@pytest.fixture(scope="module")
def world():
    return World()


def _check(id, kind, status=CheckStatus.OK):
    return Check(id=id, kind=kind, status=status, message="m")


def test_summary_line_names_what_was_proved_attested_and_not_ok():
    report = Report(
        result=CheckStatus.WARN,
        mode=STRICT,
        policy_id="p",
        checks=[
            _check("proof_signature", CheckKind.SIGNATURE),
            _check("rule:max_tier", CheckKind.RULE),
            _check("rule:ubo_count_min", CheckKind.RULE, CheckStatus.WARN),
            _check("attested:counts", CheckKind.ATTESTED),
            _check("attested:possible_matches", CheckKind.ATTESTED),
            _check("list_root", CheckKind.INTEGRITY, CheckStatus.FAIL),
        ],
    )
    assert summary_line(report) == (
        "proved: proof_signature, rule:max_tier; attested (prover's signature): counts, possible_matches;"
        " not ok: rule:ubo_count_min, list_root"
    )
    empty = Report(result=CheckStatus.OK, mode=STRICT, policy_id="p", checks=[])
    assert summary_line(empty) == "proved: nothing; attested (prover's signature): nothing"


def test_a_v2_report_names_its_scheme(world):
    report = verify_proof(world.build().proof, keyring=world.keyring, mode=STRICT, now=NOW, trust=world.trust)
    assert report.scheme == "cap-proof.v2"


def test_a_pinned_policy_is_checked_and_another_refused(world):
    proof = world.build().proof
    pins = {
        "same": (PinnedPolicy(hash=proof.manifest.policy.hash, origin="t"),),
        "other": (PinnedPolicy(hash="0x" + "ab" * 32, origin="--expect-policy-hash"),),
    }
    status = {}
    for name, policies in pins.items():
        trust = TrustAnchors(lists=world.trust.lists, policies=policies)
        report = verify_proof(proof, keyring=world.keyring, mode=STRICT, now=NOW, trust=trust)
        check = next(c for c in report.checks if c.id == "policy_pin")
        status[name] = (check.kind, check.status)
    assert status == {
        "same": (CheckKind.POLICY, CheckStatus.OK),
        "other": (CheckKind.POLICY, CheckStatus.FAIL),
    }


def test_differing_names_every_field_top_level_and_nested(world):
    manifest = world.build().proof.manifest
    other = manifest.model_copy(
        update={
            "created_at": "2030-01-01T00:00:00Z",
            "policy": manifest.policy.model_copy(update={"name": "another"}),
        }
    )
    assert _differing(manifest, other) == ["created_at", "policy.name"]


def test_untrusted_lists_make_a_rule_unevaluable_but_keep_its_possible_match_warning():
    """No trusted list: the screening rule cannot be evaluated, and the possible match the proof carries
    still asks for human review under its own id."""
    world = World(suppliers_csv=CONTEXT_SUPPLIERS.replace("Petrov Industrial Holding GmbH,DE,1\n", ""))
    proof = world.build(AUDIT).proof
    report = verify_proof(proof, keyring=world.keyring, mode=AUDIT, now=NOW, trust=TrustAnchors())
    checks = {c.id: c for c in report.checks}
    assert checks["possible_match:no_sanctioned_suppliers"].kind is CheckKind.EVIDENCE
    assert checks["possible_match:no_sanctioned_suppliers"].status is CheckStatus.WARN
    assert checks["rule:no_sanctioned_suppliers"].status is not CheckStatus.OK


def _violations(constraint):
    return (
        REGISTRY.get_sample_value("cap_enforce_constraint_violations_total", {"constraint": constraint}) or 0
    )


def test_enforcement_meters_only_the_rules_that_did_not_hold_and_the_time_they_took(world, monkeypatch):
    sanctioned = World(
        suppliers_csv="name,jurisdiction,tier\nPetrov Industrial Holding GmbH,DE,1\nACME GmbH,DE,1\n"
    )
    proof = sanctioned.build(AUDIT).proof
    ticks = iter([10.0, 10.25])
    monkeypatch.setattr(verify_module, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    before = {c: _violations(c) for c in ("no_sanctioned_suppliers", "max_tier", "proof_signature")}
    duration = REGISTRY.get_sample_value("cap_enforce_duration_seconds_sum") or 0.0
    verify_proof(proof, keyring=sanctioned.keyring, mode=AUDIT, now=NOW, trust=sanctioned.trust)
    after = {c: _violations(c) for c in before}
    assert {c: after[c] - before[c] for c in before} == {
        "no_sanctioned_suppliers": 1,
        "max_tier": 0,
        "proof_signature": 0,
    }
    assert REGISTRY.get_sample_value("cap_enforce_duration_seconds_sum") - duration == pytest.approx(0.25)
