"""The manifest (core/manifest.py): every field a prover passes reaches the signed bytes, in the
documented order and with the documented defaults; a manifest signature is Ed25519 over
``"manifest.v1.0\\n"`` + canonical JSON with ``signatures = []`` and nothing else verifies.

Each test kills mutants of core/manifest.py (``make mutation MODULE=core/manifest.py``).
"""

import base64
import json

import pytest

from core.commitments import RootScheme, commit
from core.manifest import (
    MANIFEST_VERSION,
    ZERO_DIGEST,
    AuditInfo,
    ListsInfo,
    ListSourceInfo,
    PolicyInfo,
    SignatureInfo,
    build_manifest,
    check_manifest_signature,
    manifest_signing_bytes,
    sign_manifest,
)
from core.signing import Ed25519Signer, verify_signature
from tests.world import World

OTHER = Ed25519Signer.from_seed(b"\x05" * 32)
POLICY = PolicyInfo(name="p", version="lksg.v1", hash="sha3-256:" + "ab" * 32)
LISTS = ListsInfo(
    generated_at="2026-03-01T12:00:00Z",
    sources=[
        ListSourceInfo(publisher="UN", format="un-xml", file="un.xml", sha3_256="sha3-256:" + "cd" * 32)
    ],
)


@pytest.fixture(scope="module")
def world():
    return World()


@pytest.fixture(scope="module")
def commitments(world):
    return commit(world.suppliers, world.ubos, RootScheme.MERKLE, "2026-03-01T12:00:00Z")


def test_build_carries_every_given_field(commitments):
    audit = AuditInfo(tail_digest="0x" + "01" * 32, events_count=3)
    m = build_manifest(
        commitments,
        POLICY,
        subject="LEI-X",
        created_at="2026-03-01T12:00:00Z",
        audit=audit,
        sanctions_root="0x" + "02" * 32,
        jurisdiction_root="0x" + "03" * 32,
        lists=LISTS,
    )
    assert (m.supplier_root, m.ubo_root, m.company_commitment_root, m.root_scheme) == (
        commitments.supplier_root,
        commitments.ubo_root,
        commitments.company_commitment_root,
        RootScheme.MERKLE,
    )
    assert (m.policy, m.audit, m.subject, m.created_at) == (POLICY, audit, "LEI-X", "2026-03-01T12:00:00Z")
    assert (m.sanctions_root, m.jurisdiction_root, m.lists) == ("0x" + "02" * 32, "0x" + "03" * 32, LISTS)
    assert m.signatures == [] and m.time_anchor is None


def test_build_defaults(commitments):
    m = build_manifest(commitments, POLICY, subject="LEI-X", created_at="2026-03-01T12:00:00Z")
    obj = json.loads(manifest_signing_bytes(m).removeprefix(b"manifest.v1.0\n"))
    assert obj["version"] == MANIFEST_VERSION == "manifest.v1.0"
    assert obj["audit"] == {"tail_digest": ZERO_DIGEST, "events_count": 0}
    assert ZERO_DIGEST == "0x" + "00" * 32
    assert obj["proof"] == {"type": "none", "status": "none"}
    assert obj["signatures"] == []
    assert (m.sanctions_root, m.jurisdiction_root, m.lists) == (None, None, None)


def test_signed_bytes_are_the_domain_and_canonical_json_in_field_order(world):
    m = sign_manifest(world.manifest(), world.signer)
    data = manifest_signing_bytes(m)
    assert data.startswith(b"manifest.v1.0\n")
    obj = json.loads(data.removeprefix(b"manifest.v1.0\n"))
    assert list(obj) == [
        "version",
        "created_at",
        "supplier_root",
        "ubo_root",
        "company_commitment_root",
        "policy",
        "audit",
        "proof",
        "signatures",
        "subject",
        "root_scheme",
        "sanctions_root",
        "jurisdiction_root",
        "lists",
    ]  # time_anchor, an absent optional, is omitted
    anchored = json.loads(manifest_signing_bytes(m.model_copy(update={"time_anchor": {"t": 1}}))[14:])
    assert list(anchored).index("time_anchor") == list(anchored).index("signatures") + 1
    assert obj["signatures"] == [] and manifest_signing_bytes(m.model_copy(update={"signatures": []})) == data


def test_sign_manifest_signs_the_documented_bytes_and_replaces_earlier_signatures(world):
    m = world.manifest()
    once = sign_manifest(m, OTHER)
    twice = sign_manifest(once, world.signer)
    assert [s.kid for s in twice.signatures] == [world.signer.kid]
    (sig,) = twice.signatures
    assert sig.alg == "Ed25519"
    assert verify_signature(world.signer.public_key_b64, base64.b64decode(sig.sig), manifest_signing_bytes(m))
    assert check_manifest_signature(twice, sig, world.signer.public_key_b64) is True


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda s: s.model_copy(update={"alg": "Ed448"}), id="other_alg"),
        pytest.param(lambda s: s.model_copy(update={"sig": s.sig + "!"}), id="not_base64"),
        pytest.param(lambda s: s.model_copy(update={"sig": "A" + s.sig}), id="bad_padding"),
        pytest.param(lambda s: s.model_copy(update={"sig": s.sig[:-4]}), id="short"),
        pytest.param(lambda s: SignatureInfo(kid=s.kid, sig=""), id="empty"),
    ],
)
def test_only_an_ed25519_signature_over_the_manifest_verifies(world, edit):
    signed = sign_manifest(world.manifest(), world.signer)
    bad = edit(signed.signatures[0])
    assert check_manifest_signature(signed, bad, world.signer.public_key_b64) is False


def test_signature_check_covers_every_field_and_uses_given_bytes(world):
    signed = sign_manifest(world.manifest(), world.signer)
    sig = signed.signatures[0]
    assert check_manifest_signature(signed, sig, OTHER.public_key_b64) is False
    for update in ({"sanctions_root": None}, {"lists": None}, {"subject": "LEI-OTHER"}):
        changed = signed.model_copy(update=update)
        assert check_manifest_signature(changed, sig, world.signer.public_key_b64) is False
    other_bytes = manifest_signing_bytes(signed.model_copy(update={"subject": "LEI-OTHER"}))
    assert check_manifest_signature(signed, sig, world.signer.public_key_b64, other_bytes) is False
    own = manifest_signing_bytes(signed)
    assert check_manifest_signature(signed, sig, world.signer.public_key_b64, own) is True
