"""A proof over a screening-key.v2 list: the version is in the evidence, a homoglyph is refused, v1 stays."""

from __future__ import annotations

import json

import pytest

from core.context import EvidenceError, check_key_version
from core.modes import CheckStatus, EnforcementMode
from core.name_keys import KeyVersion
from core.proof import parse_proof_bytes, proof_file_bytes, sign_proof
from core.prover import PolicyFailedError
from core.verify import verify_proof
from tests.world import NOW, World

STRICT = EnforcementMode.STRICT
SPOOF = "\u0420etrov Industrial Holding GmbH,DE,1\n"  # Cyrillic capital Er for the P of a listed name


def _world(version: KeyVersion, extra: str = "") -> World:
    return World(suppliers_csv=World().suppliers_csv + extra, key_version=version)


def _screening_evidence(proof):
    return next(r.evidence for r in proof.rules if r.rule_id == "no_sanctioned_suppliers")


def test_v2_proof_names_its_key_version_and_verifies():
    w = _world(KeyVersion.V2)
    proof = w.build().proof
    assert _screening_evidence(proof)["key_version"] == "screening-key.v2"
    assert (
        verify_proof(proof, keyring=w.keyring, mode=STRICT, now=NOW, trust=w.trust).result is CheckStatus.OK
    )


def test_v1_proof_carries_no_key_version_and_verifies():
    w = _world(KeyVersion.V1)
    proof = w.build().proof
    assert "key_version" not in _screening_evidence(proof)
    assert (
        verify_proof(proof, keyring=w.keyring, mode=STRICT, now=NOW, trust=w.trust).result is CheckStatus.OK
    )


def test_homoglyph_supplier_passes_a_v1_list_and_is_refused_under_v2_pointing_at_cap_screen():
    assert _world(KeyVersion.V1, SPOOF).build(STRICT).verdict is CheckStatus.OK  # the evasion, before
    with pytest.raises(PolicyFailedError, match="no_sanctioned_suppliers") as exc:
        _world(KeyVersion.V2, SPOOF).build(STRICT, enforce=True)
    assert "cap screen --suppliers" in exc.value.message


def test_refusal_without_screening_has_no_screen_hint():
    w = World(suppliers_csv=World().suppliers_csv + "Tehran Parts Co,IR,1\n")
    with pytest.raises(PolicyFailedError, match="max_high_risk_suppliers") as exc:
        w.build(STRICT, enforce=True)
    assert "cap screen" not in exc.value.message


def test_unknown_key_version_in_evidence_fails_the_evidence_check():
    w = _world(KeyVersion.V2)
    proof = w.build().proof
    rules = []
    for r in proof.rules:
        if r.rule_id == "no_sanctioned_suppliers":
            ev = json.loads(json.dumps(r.evidence)) | {"key_version": "screening-key.v9"}
            r = r.model_copy(update={"evidence": ev})
        rules.append(r)
    forged = sign_proof(proof.model_copy(update={"rules": rules}), w.signer)
    report = verify_proof(
        parse_proof_bytes(proof_file_bytes(forged)), keyring=w.keyring, mode=STRICT, now=NOW, trust=w.trust
    )
    check = next(c for c in report.checks if c.id == "evidence:no_sanctioned_suppliers")
    assert check.status is CheckStatus.FAIL and "screening-key.v9" in check.message


def test_evidence_claiming_v1_against_a_trusted_v2_list_fails():
    """A prover that keys its suppliers under v1 (where a homoglyph evades) while the trusted list is v2."""
    w = _world(KeyVersion.V2)
    proof = w.build().proof
    rules = []
    for r in proof.rules:
        if r.rule_id == "no_sanctioned_suppliers":
            ev = {k: v for k, v in json.loads(json.dumps(r.evidence)).items() if k != "key_version"}
            r = r.model_copy(update={"evidence": ev})
        rules.append(r)
    forged = sign_proof(proof.model_copy(update={"rules": rules}), w.signer)
    report = verify_proof(
        parse_proof_bytes(proof_file_bytes(forged)), keyring=w.keyring, mode=STRICT, now=NOW, trust=w.trust
    )
    check = next(c for c in report.checks if c.id == "evidence:no_sanctioned_suppliers")
    assert check.status is CheckStatus.FAIL
    assert "screening-key.v1" in check.message and "screening-key.v2" in check.message


@pytest.mark.parametrize(
    ("evidence", "version"),
    [
        pytest.param({}, KeyVersion.V1, id="absent_is_v1"),
        pytest.param({"key_version": "screening-key.v1"}, KeyVersion.V1, id="v1"),
        pytest.param({"key_version": "screening-key.v2"}, KeyVersion.V2, id="v2"),
    ],
)
def test_check_key_version(evidence, version):
    assert check_key_version(evidence) is version


@pytest.mark.parametrize("value", ["screening-key.v3", "", 2, None, ["screening-key.v2"]])
def test_check_key_version_refuses_unknown(value):
    with pytest.raises(EvidenceError, match=r"this verifier knows screening-key\.v1, screening-key\.v2"):
        check_key_version({"key_version": value})
