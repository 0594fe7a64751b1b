"""Proof vectors: a signed cap-proof.v2 from fixed seeds and clocks; negatives named for what they break."""

from __future__ import annotations

import base64
from datetime import timedelta

from core.keyring import Keyring
from core.keys import KeyStatus
from core.modes import CheckStatus
from core.proof import Proof, proof_file_bytes, sign_proof
from core.sanctions import SanctionsEntry
from core.signing import Ed25519Signer
from tests.world import NOW, World

SANCTIONED = "Petrov Industrial Holding GmbH,DE,1\n"
FAKE_LISTED = SanctionsEntry(source="fake", entry_id="1", primary_name="Harmless Person")


TRUSTED = World().lists_file  # the verifier's installed lists in every case


def _case(proof_bytes: bytes, keyring: Keyring, result: CheckStatus, failing: list[str]) -> dict[str, object]:
    return {
        "proof_b64": base64.b64encode(proof_bytes).decode(),
        "keyring": keyring.model_dump(mode="json", by_alias=True, exclude_none=True),
        "trusted_lists": [TRUSTED.model_dump(mode="json", by_alias=True, exclude_none=True)],
        "max_list_age_days": 14,
        "mode": "strict",
        "expected_result": result.value,
        "expected_failing_checks": sorted(failing),
    }


def _flip(data: bytes, marker: bytes) -> bytes:
    i = data.index(marker) + len(marker)
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


def vectors() -> dict[str, object]:
    world = World()
    proof: Proof = world.build().proof
    good = proof_file_bytes(proof)
    other = Ed25519Signer.from_seed(b"\x07" * 32)
    wrong_key = sign_proof(proof, other)
    wrong_key = wrong_key.model_copy(
        update={"signature": wrong_key.signature.model_copy(update={"kid": proof.signature.kid})}
    )
    sanctioned = World(suppliers_csv=World().suppliers_csv + SANCTIONED).build().proof
    lenient = World(listed=(FAKE_LISTED,)).build().proof  # same prover key, a list of the prover's choosing
    stale = World(lists_built_at=NOW - timedelta(days=20)).build().proof
    list_rules = ["rule:max_high_risk_suppliers", "rule:no_sanctioned_suppliers", "rule:no_sanctioned_ubos"]
    return {
        "proof/valid.json": _case(good, world.keyring, CheckStatus.OK, []),
        "proof/sig_wrong_key.json": _case(
            proof_file_bytes(wrong_key), world.keyring, CheckStatus.FAIL, ["proof_signature"]
        ),
        "proof/manifest_one_byte_flipped.json": _case(
            _flip(good, b'"company_commitment_root":"0x'),
            world.keyring,
            CheckStatus.FAIL,
            ["company_root", "manifest_signature", "proof_signature"],
        ),
        "proof/count_one_byte_flipped.json": _case(
            _flip(good, b'"supplier_count":'),
            world.keyring,
            CheckStatus.FAIL,
            ["evidence:no_sanctioned_suppliers", "evidence:supplier_count_max", "proof_signature"],
        ),
        "proof/key_revoked.json": _case(
            good, world.keyring_with(KeyStatus.REVOKED), CheckStatus.FAIL, ["key_status"]
        ),
        "proof/supplier_sanctioned.json": _case(
            proof_file_bytes(sanctioned), world.keyring, CheckStatus.FAIL, ["rule:no_sanctioned_suppliers"]
        ),
        "proof/list_root_untrusted.json": _case(
            proof_file_bytes(lenient), world.keyring, CheckStatus.FAIL, ["list_root", *list_rules]
        ),
        "proof/lists_too_old.json": _case(
            proof_file_bytes(stale), world.keyring, CheckStatus.FAIL, ["list_root", *list_rules]
        ),
        "proof/truncated.json": _case(
            good[: len(good) // 3], world.keyring, CheckStatus.FAIL, ["proof_format"]
        ),
    }
