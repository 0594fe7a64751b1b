"""Vectors for key metadata, KIDs, the keyring, key acceptance and attestations (``tests/vectors/keys``).

Every key comes from a fixed 32-byte seed below. These seeds are public test constants, not secrets; no
vector file contains a seed or a private key, only what follows from them (public keys, kids, signatures).
The acceptance matrix's expected values are written out by hand: it is the specification, not a snapshot.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from core.attestation import SignedAttestation, attest, signing_bytes
from core.canonical import canonical_bytes, canonical_obj, pretty_bytes
from core.keyring import Keyring, KeyringMode, bootstrap_keyring, entry_from_metadata
from core.keys import KeyMetadata, KeyStatus, build_metadata, format_timestamp
from core.signing import Ed25519Signer

SEED_ROOT = bytes(range(32))
SEED_NEXT = bytes(range(32, 64))
SEED_THIRD = bytes(range(64, 96))
SEED_OUTSIDER = bytes(range(96, 128))
SEED_RETIRED = bytes(range(128, 160))
SEED_REVOKED = bytes(range(160, 192))
SEED_PENDING = bytes(range(192, 224))
SEED_EXPIRED = bytes(range(224, 256))
NOW = datetime(2025, 1, 1, tzinfo=UTC)
OWNER = "ACME GmbH"


def signer(seed: bytes) -> Ed25519Signer:
    return Ed25519Signer.from_seed(seed)


def metadata(seed: bytes, *, now: datetime = NOW, status: KeyStatus = KeyStatus.ACTIVE) -> KeyMetadata:
    return build_metadata(signer(seed).public_key_b64, OWNER, now, status=status)


def _text(value: Any) -> str:
    return canonical_bytes(value).decode("utf-8")


def kid_from_seed() -> dict[str, Any]:
    s = signer(SEED_ROOT)
    meta = metadata(SEED_ROOT)
    return {
        "description": "public key from test seed SEED_ROOT (gen_keys.py); kid and fingerprint rules",
        "public_key": s.public_key_b64,
        "kid": s.kid,
        "fingerprint": meta.fingerprint,
    }


def key_metadata_v1() -> dict[str, Any]:
    meta = metadata(SEED_ROOT)
    return {"metadata": canonical_obj(meta), "canonical": _text(meta), "pretty": pretty_bytes(meta).decode()}


def key_metadata_wrong_kid() -> dict[str, Any]:
    good = canonical_obj(metadata(SEED_ROOT))
    good["kid"] = metadata(SEED_NEXT).kid
    return {"metadata": good, "expected_error": "key_kid_mismatch"}


def keyring_v1_bootstrap() -> dict[str, Any]:
    keyring = bootstrap_keyring(metadata(SEED_ROOT), NOW, "ops@example.com")
    return {"keyring": canonical_obj(keyring), "canonical": _text(keyring)}


def acceptance_keyring() -> Keyring:
    """Dual-accept keyring, version 2: default ROOT, NEXT accepted until NOW + 7 days, one key per status."""
    expired = metadata(SEED_EXPIRED, now=NOW - timedelta(days=800))
    keys = (
        entry_from_metadata(metadata(SEED_ROOT)),
        entry_from_metadata(metadata(SEED_NEXT)),
        entry_from_metadata(metadata(SEED_RETIRED), status=KeyStatus.RETIRED).model_copy(
            update={"retired_at": format_timestamp(NOW)}
        ),
        entry_from_metadata(metadata(SEED_REVOKED), status=KeyStatus.REVOKED),
        entry_from_metadata(metadata(SEED_PENDING), status=KeyStatus.PENDING),
        entry_from_metadata(expired),
        entry_from_metadata(metadata(SEED_THIRD, now=NOW + timedelta(days=30))),
    )
    base = bootstrap_keyring(metadata(SEED_ROOT), NOW, "ops@example.com")
    return Keyring(
        version=2,
        mode=KeyringMode.DUAL_ACCEPT,
        default_signing_kid=keys[0].kid,
        dual_accept_until=format_timestamp(NOW + timedelta(days=7)),
        keys=keys,
        history=base.history,
    )


# (case id, seed, hours after NOW, expected status per mode strict / relaxed / audit)
ACCEPTANCE_TABLE: list[tuple[str, bytes, int, tuple[str, str, str]]] = [
    ("default_active", SEED_ROOT, 1, ("ok", "ok", "ok")),
    ("dual_accept_within_window", SEED_NEXT, 1, ("ok", "ok", "ok")),
    ("dual_accept_after_window", SEED_NEXT, 24 * 8, ("fail", "warn", "warn")),
    ("retired", SEED_RETIRED, 1, ("fail", "warn", "warn")),
    ("revoked", SEED_REVOKED, 1, ("fail", "fail", "fail")),
    ("pending", SEED_PENDING, 1, ("fail", "fail", "fail")),
    ("active_expired", SEED_EXPIRED, 1, ("fail", "fail", "fail")),
    ("active_not_yet_valid", SEED_THIRD, 1, ("fail", "fail", "fail")),
    ("unknown_kid", SEED_OUTSIDER, 1, ("fail", "fail", "fail")),
]
MODES = ("strict", "relaxed", "audit")


def acceptance_matrix() -> dict[str, Any]:
    cases = []
    for case_id, seed, hours, expected in ACCEPTANCE_TABLE:
        kid = signer(seed).kid
        at = format_timestamp(NOW + timedelta(hours=hours))
        for mode, status in zip(MODES, expected, strict=True):
            cases.append({"id": f"{case_id}-{mode}", "kid": kid, "mode": mode, "now": at, "expected": status})
    return {"keyring": canonical_obj(acceptance_keyring()), "cases": cases}


def valid_attestation() -> SignedAttestation:
    return attest(signer(SEED_ROOT), OWNER, metadata(SEED_NEXT), NOW)


def _attestation_vector(sa: SignedAttestation, expected: bool, why: str) -> dict[str, Any]:
    return {
        "description": why,
        "signed_attestation": canonical_obj(sa),
        "signing_input": signing_bytes(sa.attestation).decode("utf-8"),
        "expected_valid": expected,
    }


def tampered_subject() -> SignedAttestation:
    sa = valid_attestation()
    other = metadata(SEED_OUTSIDER)
    changed = sa.attestation.model_copy(
        update={"subject_public_key": other.public_key, "subject_kid": other.kid}
    )
    return sa.model_copy(update={"attestation": changed})


def flipped_signature() -> SignedAttestation:
    sa = valid_attestation()
    raw = bytearray(base64.b64decode(sa.signature))
    raw[0] ^= 0x01
    return sa.model_copy(update={"signature": base64.b64encode(bytes(raw)).decode("ascii")})


def wrong_signer() -> SignedAttestation:
    sa = valid_attestation()
    outsider = signer(SEED_OUTSIDER)
    changed = sa.attestation.model_copy(update={"signer_kid": outsider.kid})
    return sa.model_copy(update={"attestation": changed, "signer_public_key": outsider.public_key_b64})


def sorted_keys_original_bug() -> SignedAttestation:
    """Signed the way the original CLI did: a sorted-key object, no domain prefix."""
    sa = valid_attestation()
    body = json.dumps(canonical_obj(sa.attestation), sort_keys=True, separators=(",", ":")).encode()
    sig = signer(SEED_ROOT).sign(body)
    return sa.model_copy(update={"signature": base64.b64encode(sig).decode("ascii")})


def chain(broken: bool) -> dict[str, Any]:
    """ROOT → NEXT → THIRD; the broken variant has OUTSIDER (not NEXT) attest THIRD in link 1."""
    links = [valid_attestation()]
    second_signer = SEED_OUTSIDER if broken else SEED_NEXT
    links.append(attest(signer(second_signer), OWNER, metadata(SEED_THIRD), NOW + timedelta(days=1)))
    store = [metadata(s) for s in (SEED_ROOT, SEED_NEXT, SEED_THIRD, SEED_OUTSIDER)]
    expected: dict[str, Any] = {"ok": not broken}
    if broken:
        expected["failed_index"] = 1
    else:
        expected["head_kid"] = signer(SEED_THIRD).kid
    return {
        "trusted_root_kid": signer(SEED_ROOT).kid,
        "key_store": [canonical_obj(m) for m in store],
        "attestations": [canonical_obj(sa) for sa in links],
        "expected": expected,
    }


def vectors() -> dict[str, object]:
    return {
        "keys/kid_from_seed.json": kid_from_seed(),
        "keys/key_metadata_v1.json": key_metadata_v1(),
        "keys/key_metadata_wrong_kid.json": key_metadata_wrong_kid(),
        "keys/keyring_v1_bootstrap.json": keyring_v1_bootstrap(),
        "keys/acceptance_matrix.json": acceptance_matrix(),
        "keys/attestation_valid.json": _attestation_vector(valid_attestation(), True, "ROOT attests NEXT"),
        "keys/attestation_subject_tampered.json": _attestation_vector(
            tampered_subject(), False, "subject key and kid swapped after signing"
        ),
        "keys/attestation_signature_flipped.json": _attestation_vector(
            flipped_signature(), False, "one bit of the signature flipped"
        ),
        "keys/attestation_wrong_signer.json": _attestation_vector(
            wrong_signer(), False, "signer key and kid replaced by another key's"
        ),
        "keys/attestation_sorted_keys_original_bug.json": _attestation_vector(
            sorted_keys_original_bug(),
            False,
            "signed over sorted keys without prefix, as the original CLI did",
        ),
        "keys/attestation_chain_valid.json": chain(broken=False),
        "keys/attestation_chain_broken_link.json": chain(broken=True),
    }
