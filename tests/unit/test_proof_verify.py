"""Proof build and verification: every check real, every negative named for what it breaks."""

import json
import random

import pytest

from core.commitments import RootScheme
from core.errors import InvalidInputError
from core.keys import KeyStatus
from core.modes import CheckStatus, EnforcementMode
from core.proof import parse_proof_bytes, proof_file_bytes, sign_proof
from core.prover import PolicyFailedError
from core.rules import Outcome
from core.signing import Ed25519Signer
from core.verify import verify_proof, verify_proof_bytes
from tests.world import NOW, World

STRICT, RELAXED, AUDIT = EnforcementMode.STRICT, EnforcementMode.RELAXED, EnforcementMode.AUDIT
SANCTIONED = "Petrov Industrial Holding GmbH,DE,1\n"


def failing(report):
    return {c.id for c in report.checks if c.status is CheckStatus.FAIL}


def verify_bytes(world, data, mode=STRICT, keyring=None):
    return verify_proof_bytes(data, keyring=keyring or world.keyring, mode=mode, now=NOW, trust=world.trust)


@pytest.fixture(scope="module")
def world():
    return World()


@pytest.fixture(scope="module")
def good(world):
    return proof_file_bytes(world.build().proof)


@pytest.mark.parametrize("scheme", list(RootScheme), ids=lambda s: s.value)
def test_clean_proof_verifies_ok_in_both_schemes(scheme):
    w = World(scheme=scheme)
    built = w.build()
    assert built.verdict is CheckStatus.OK and not built.violations
    report = verify_bytes(w, proof_file_bytes(built.proof))
    assert report.result is CheckStatus.OK, [c for c in report.checks if c.status is not CheckStatus.OK]
    ids = {c.id for c in report.checks}
    assert {
        "ir_hash",
        "policy_hash",
        "company_root",
        "key_status",
        "proof_signature",
        "manifest_signature",
        "rule:no_sanctioned_suppliers",
        "rule:max_high_risk_suppliers",
    } <= ids


def test_every_rule_of_the_policy_is_evaluated_and_rechecked(world, good):
    proof = parse_proof_bytes(good)
    assert {r.rule_id for r in proof.rules} == {r.id for r in world.compiled.ir.rules}
    report = verify_bytes(world, good)
    assert {c.id for c in report.checks if c.id.startswith("rule:")} == {
        f"rule:{r.id}" for r in proof.ir.rules
    }


def test_one_byte_flipped_anywhere_fails_with_the_check_named(world, good):
    rng = random.Random(7)
    positions = sorted(set(rng.sample(range(len(good) - 1), 250)) | {0, 1, len(good) - 2})
    for pos in positions:
        forged = good[:pos] + bytes([good[pos] ^ 0x01]) + good[pos + 1 :]
        report = verify_bytes(world, forged)
        assert report.result is CheckStatus.FAIL, f"flip at byte {pos} went unnoticed"
        assert failing(report), pos


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(lambda b: b[: len(b) // 2], "proof_format", id="truncated"),
        pytest.param(lambda b: b"not json at all", "proof_format", id="not_json"),
        pytest.param(lambda b: b"[]", "proof_format", id="json_not_object"),
        pytest.param(
            lambda b: json.dumps(json.loads(b), indent=1).encode(), "proof_format", id="re_serialised"
        ),
        pytest.param(lambda b: b"\xff\xfe" + b, "proof_format", id="not_utf8"),
    ],
)
def test_unreadable_or_non_canonical_proof_files_fail(world, good, mutate, expected):
    report = verify_bytes(world, mutate(good))
    assert report.result is CheckStatus.FAIL and expected in failing(report)
    assert report.integrity_failed


@pytest.mark.parametrize(
    ("status", "mode", "result"),
    [
        pytest.param(KeyStatus.ACTIVE, STRICT, CheckStatus.OK, id="active_strict"),
        pytest.param(KeyStatus.RETIRED, STRICT, CheckStatus.FAIL, id="retired_strict"),
        pytest.param(KeyStatus.RETIRED, RELAXED, CheckStatus.WARN, id="retired_relaxed"),
        pytest.param(KeyStatus.RETIRED, AUDIT, CheckStatus.WARN, id="retired_audit"),
        pytest.param(KeyStatus.REVOKED, RELAXED, CheckStatus.FAIL, id="revoked_relaxed"),
        pytest.param(KeyStatus.REVOKED, AUDIT, CheckStatus.FAIL, id="revoked_audit"),
    ],
)
def test_key_status_decides_by_mode(world, good, status, mode, result):
    report = verify_bytes(world, good, mode, world.keyring_with(status))
    key = next(c for c in report.checks if c.id == "key_status")
    assert key.status is result and report.result is result


def test_unknown_key_fails_signature_and_key_checks(world):
    stranger = World(signer=Ed25519Signer.from_seed(b"\x09" * 32))
    data = proof_file_bytes(stranger.build().proof)
    report = verify_bytes(world, data)
    assert {"key_status", "proof_signature"} <= failing(report)


def test_signature_by_another_key_under_the_right_kid_fails(world, good):
    proof = parse_proof_bytes(good)
    forged = sign_proof(proof, Ed25519Signer.from_seed(b"\x05" * 32))
    forged = forged.model_copy(
        update={"signature": forged.signature.model_copy(update={"kid": proof.signature.kid})}
    )
    assert "proof_signature" in failing(
        verify_proof(forged, keyring=world.keyring, mode=STRICT, now=NOW, trust=world.trust)
    )


def test_manifest_whose_roots_differ_from_the_proof_fails(world, good):
    other = World(suppliers_csv=World().suppliers_csv + "Extra Co,FR,1\n").manifest()
    report = verify_proof(
        parse_proof_bytes(good),
        keyring=world.keyring,
        mode=STRICT,
        now=NOW,
        trust=world.trust,
        manifest=other,
    )
    assert "manifest_match" in failing(report)
    assert (
        verify_proof(
            parse_proof_bytes(good),
            keyring=world.keyring,
            mode=STRICT,
            now=NOW,
            trust=world.trust,
            manifest=world.manifest(),
        ).result
        is CheckStatus.OK
    )


def test_company_root_not_derived_from_its_parts_fails(world, good):
    proof = parse_proof_bytes(good)
    bad = proof.manifest.model_copy(update={"company_commitment_root": "0x" + "ab" * 32})
    report = verify_proof(
        proof.model_copy(update={"manifest": bad}),
        keyring=world.keyring,
        mode=STRICT,
        now=NOW,
        trust=world.trust,
    )
    assert {"company_root", "proof_signature"} <= failing(report)


def _resigned(world, proof, **changes):
    return sign_proof(proof.model_copy(update=changes), world.signer)


def test_prover_lying_about_a_result_is_caught_even_with_a_valid_signature():
    w = World(suppliers_csv=World().suppliers_csv + SANCTIONED)
    proof = w.build().proof
    rules = [
        r.model_copy(update={"result": Outcome.PASS}) if r.rule_id == "no_sanctioned_suppliers" else r
        for r in proof.rules
    ]
    report = verify_proof(
        _resigned(w, proof, rules=rules), keyring=w.keyring, mode=STRICT, now=NOW, trust=w.trust
    )
    assert "evidence:no_sanctioned_suppliers" in failing(report)
    assert "proof_signature" not in failing(report)


def test_prover_lying_about_counts_is_caught(world, good):
    proof = parse_proof_bytes(good)
    public = {**proof.public, "supplier_count": 4}
    report = verify_proof(
        _resigned(world, proof, public=public), keyring=world.keyring, mode=STRICT, now=NOW, trust=world.trust
    )
    assert {"evidence:no_sanctioned_suppliers", "evidence:supplier_count_max"} <= failing(report)


def test_forged_non_membership_neighbour_is_caught(world, good):
    proof = parse_proof_bytes(good)
    rules = []
    for r in proof.rules:
        if r.rule_id == "no_sanctioned_suppliers":
            ev = json.loads(json.dumps(r.evidence))
            ev["items"][0]["absent"][
                "predecessor" if ev["items"][0]["absent"].get("predecessor") else "successor"
            ]["key"] = "0x" + "00" * 32
            r = r.model_copy(update={"evidence": ev})
        rules.append(r)
    report = verify_proof(
        _resigned(world, proof, rules=rules), keyring=world.keyring, mode=STRICT, now=NOW, trust=world.trust
    )
    assert "evidence:no_sanctioned_suppliers" in failing(report)


def test_dropping_a_rule_result_is_caught(world, good):
    proof = parse_proof_bytes(good)
    rules = [r for r in proof.rules if r.rule_id != "max_tier"]
    report = verify_proof(
        _resigned(world, proof, rules=rules), keyring=world.keyring, mode=STRICT, now=NOW, trust=world.trust
    )
    assert "rule:max_tier" in failing(report)


def test_tampered_ir_is_caught(world, good):
    proof = parse_proof_bytes(good)
    ir = proof.ir.model_copy(update={"rules": proof.ir.rules[1:]})
    report = verify_proof(
        _resigned(world, proof, ir=ir), keyring=world.keyring, mode=STRICT, now=NOW, trust=world.trust
    )
    assert "ir_hash" in failing(report)


@pytest.mark.parametrize(
    ("mode", "build_verdict", "report_result"),
    [
        pytest.param(STRICT, CheckStatus.FAIL, CheckStatus.FAIL, id="strict"),
        pytest.param(RELAXED, CheckStatus.FAIL, CheckStatus.FAIL, id="relaxed_critical_fails"),
        pytest.param(AUDIT, CheckStatus.WARN, CheckStatus.WARN, id="audit_records_only"),
    ],
)
def test_sanctioned_supplier_in_each_mode(mode, build_verdict, report_result):
    w = World(suppliers_csv=World().suppliers_csv + SANCTIONED)
    built = w.build(mode)
    assert built.verdict is build_verdict
    assert [v.constraint for v in built.violations] == ["no_sanctioned_suppliers"]
    report = verify_bytes(w, proof_file_bytes(built.proof), mode)
    assert report.result is report_result
    assert next(c for c in report.checks if c.id == "rule:no_sanctioned_suppliers").status is report_result


def test_enforce_refuses_a_failing_proof_and_names_the_violation():
    w = World(suppliers_csv=World().suppliers_csv + SANCTIONED)
    with pytest.raises(PolicyFailedError, match="no_sanctioned_suppliers"):
        w.build(STRICT, enforce=True)
    assert w.build(AUDIT, enforce=True).verdict is CheckStatus.WARN


def test_medium_violation_warns_in_relaxed_and_fails_in_strict():
    w = World(suppliers_csv=World().suppliers_csv + "Tehran Parts Co,IR,1\n")
    assert w.build(RELAXED).verdict is CheckStatus.WARN
    assert w.build(STRICT).verdict is CheckStatus.FAIL
    (v,) = w.build(RELAXED).violations
    assert (v.constraint, v.severity.value) == ("max_high_risk_suppliers", "medium")


def test_missing_sanctions_list_fails_closed():
    w = World(with_lists=False)
    built = w.build(RELAXED)
    assert built.verdict is CheckStatus.FAIL
    assert {v.rule_id for v in built.violations} >= {
        "no_sanctioned_suppliers",
        "require_statement_root_sanctions_root",
    }
    assert all(v.severity.value in ("high", "critical") for v in built.violations)


def test_missing_high_risk_list_fails_closed():
    built = World(high_risk=None).build(RELAXED)
    (v,) = built.violations
    assert v.rule_id == "max_high_risk_suppliers" and v.severity.value == "high"


def test_alias_written_in_another_order_and_case_is_an_exact_hit():
    w = World(suppliers_csv=World().suppliers_csv + "HOLDING PETROV,DE,1\n")
    assert [v.rule_id for v in w.build().violations] == ["no_sanctioned_suppliers"]


def test_manifest_for_other_data_is_refused_at_build(world):
    other = World(suppliers_csv=World().suppliers_csv + "Extra Co,FR,1\n")
    with pytest.raises(InvalidInputError, match="supplier_root"):
        from core.prover import build_proof

        build_proof(
            manifest=other.manifest(),
            ir=world.compiled.ir,
            suppliers=world.suppliers,
            ubos=world.ubos,
            lists=world.lists,
            high_risk=world.high_risk,
            mode=STRICT,
            enforce=False,
            signer=world.signer,
            created_at="t",
        )


def test_evidence_never_contains_supplier_names(world, good):
    text = good.decode()
    for s in world.suppliers:
        assert s.name not in text
    for u in world.ubos:
        assert u.name not in text and u.birthdate not in text


@pytest.mark.parametrize(
    ("sanctioned", "signed"),
    [(False, True), (True, True), (False, False)],
    ids=["clean", "sanctioned", "unsigned"],
)
def test_proof_forms_equal_the_direct_encodings(sanctioned, signed):
    from core.canonical import canonical_bytes
    from core.manifest import manifest_signing_bytes
    from core.policy.ir import compute_ir_hash
    from core.proof import ProofForms, proof_signing_bytes

    w = World(suppliers_csv=World().suppliers_csv + (SANCTIONED if sanctioned else ""))
    proof = w.build().proof
    if not signed:
        proof = proof.model_copy(update={"signature": None})
    forms = ProofForms(proof)
    assert forms.signing_bytes() == proof_signing_bytes(proof)
    assert forms.file_bytes() == proof_file_bytes(proof)
    assert forms.manifest_bytes() == canonical_bytes(proof.manifest)
    assert forms.manifest_signing_bytes() == manifest_signing_bytes(proof.manifest)
    assert forms.ir_hash() == compute_ir_hash(proof.ir) == proof.ir_hash
