"""Key attestations: signing bytes, tampering, the original's ordering bug, and chains."""

import base64
import json

import pytest

from core.attestation import (
    DOMAIN,
    Attestation,
    SignedAttestation,
    attest,
    attestation_problem,
    require_chain,
    signing_bytes,
    verify_attestation,
    verify_chain,
)
from core.canonical import canonical_bytes
from core.errors import IntegrityError, NotFoundError
from core.keys import KeyMetadata, KeyStatus
from tests.vectorgen import VECTORS_DIR, gen_keys

NOW = gen_keys.NOW
ROOT, NEXT, THIRD, OUTSIDER = (
    gen_keys.SEED_ROOT,
    gen_keys.SEED_NEXT,
    gen_keys.SEED_THIRD,
    gen_keys.SEED_OUTSIDER,
)


def _vector(name: str) -> dict:
    return json.loads((VECTORS_DIR / "keys" / name).read_text(encoding="utf-8"))


def _store(*seeds: bytes, revoked: tuple[bytes, ...] = ()) -> dict[str, KeyMetadata]:
    metas = [
        gen_keys.metadata(s, status=KeyStatus.REVOKED if s in revoked else KeyStatus.ACTIVE) for s in seeds
    ]
    return {m.kid: m for m in metas}


def test_signed_bytes_are_domain_plus_declaration_order():
    sa = gen_keys.valid_attestation()
    body = signing_bytes(sa.attestation)
    assert body.startswith(DOMAIN)
    keys = list(json.loads(body[len(DOMAIN) :]))
    assert keys == [
        "schema",
        "signer_kid",
        "signer_owner",
        "subject_kid",
        "subject_owner",
        "subject_public_key",
        "attested_at",
    ]
    assert keys != sorted(keys) and len(keys) == len(Attestation.model_fields)
    assert verify_attestation(sa)


def test_attest_binds_signer_and_subject():
    sa = gen_keys.valid_attestation()
    assert sa.attestation.signer_kid == gen_keys.signer(ROOT).kid
    assert sa.attestation.subject_kid == gen_keys.metadata(NEXT).kid
    assert sa.attestation.subject_public_key == gen_keys.metadata(NEXT).public_key
    assert sa.attestation.attested_at == "2025-01-01T00:00:00Z"


def test_attest_refuses_inconsistent_subject():
    bad = gen_keys.metadata(NEXT).model_copy(update={"kid": gen_keys.metadata(THIRD).kid})
    with pytest.raises(IntegrityError):
        attest(gen_keys.signer(ROOT), "ACME", bad, NOW)


def _swap_subject_key_only(sa: SignedAttestation) -> SignedAttestation:
    changed = sa.attestation.model_copy(update={"subject_public_key": gen_keys.metadata(OUTSIDER).public_key})
    return sa.model_copy(update={"attestation": changed})


def _change_owner(sa: SignedAttestation) -> SignedAttestation:
    return sa.model_copy(update={"attestation": sa.attestation.model_copy(update={"subject_owner": "Evil"})})


def _bad_base64(sa: SignedAttestation) -> SignedAttestation:
    return sa.model_copy(update={"signature": "not base64!"})


def _short_signature(sa: SignedAttestation) -> SignedAttestation:
    return sa.model_copy(update={"signature": base64.b64encode(b"x" * 10).decode()})


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        pytest.param(gen_keys.tampered_subject, "signature does not verify", id="subject_key_changed"),
        pytest.param(
            lambda: _swap_subject_key_only(gen_keys.valid_attestation()),
            "subject_kid",
            id="subject_key_changed_kid_kept",
        ),
        pytest.param(gen_keys.flipped_signature, "signature does not verify", id="signature_flipped"),
        pytest.param(gen_keys.wrong_signer, "signature does not verify", id="wrong_signer"),
        pytest.param(
            lambda: gen_keys.valid_attestation().model_copy(
                update={"signer_public_key": gen_keys.metadata(OUTSIDER).public_key}
            ),
            "signer_kid",
            id="signer_key_swapped_kid_kept",
        ),
        pytest.param(lambda: _change_owner(gen_keys.valid_attestation()), "signature", id="owner_changed"),
        pytest.param(lambda: _bad_base64(gen_keys.valid_attestation()), "base64", id="signature_not_base64"),
        pytest.param(
            lambda: _short_signature(gen_keys.valid_attestation()), "signature", id="signature_short"
        ),
        pytest.param(gen_keys.sorted_keys_original_bug, "signature", id="original_sorted_keys_bug"),
    ],
)
def test_tampered_attestations_fail(tamper, reason):
    sa = tamper()
    assert not verify_attestation(sa)
    assert reason in (attestation_problem(sa) or "")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("attestation_valid.json", id="valid"),
        pytest.param("attestation_subject_tampered.json", id="subject_tampered"),
        pytest.param("attestation_signature_flipped.json", id="signature_flipped"),
        pytest.param("attestation_wrong_signer.json", id="wrong_signer"),
        pytest.param("attestation_sorted_keys_original_bug.json", id="original_bug"),
    ],
)
def test_attestation_vectors(name):
    vec = _vector(name)
    sa = SignedAttestation.model_validate(vec["signed_attestation"])
    assert verify_attestation(sa) is vec["expected_valid"]
    assert signing_bytes(sa.attestation).decode() == vec["signing_input"]
    assert "PRIVATE" not in json.dumps(vec)


def test_attestation_round_trips_through_json():
    sa = gen_keys.valid_attestation()
    again = SignedAttestation.model_validate(json.loads(canonical_bytes(sa)))
    assert again == sa and verify_attestation(again)


# --- chains ----------------------------------------------------------------------------------------------


def _links(*pairs: tuple[bytes, bytes]) -> list[SignedAttestation]:
    return [attest(gen_keys.signer(a), "ACME", gen_keys.metadata(b), NOW) for a, b in pairs]


def _flip(sa: SignedAttestation) -> SignedAttestation:
    raw = bytearray(base64.b64decode(sa.signature))
    raw[-1] ^= 0x80
    return sa.model_copy(update={"signature": base64.b64encode(bytes(raw)).decode()})


@pytest.mark.parametrize(
    ("links", "store", "ok", "failed", "reason"),
    [
        pytest.param(
            _links((ROOT, NEXT), (NEXT, THIRD)), _store(ROOT, NEXT, THIRD), True, None, None, id="valid"
        ),
        pytest.param([], _store(ROOT), True, None, None, id="empty_chain_is_root"),
        pytest.param(
            _links((ROOT, NEXT), (OUTSIDER, THIRD)),
            _store(ROOT, NEXT, THIRD, OUTSIDER),
            False,
            1,
            "previous subject",
            id="broken_link",
        ),
        pytest.param(
            _links((NEXT, THIRD)), _store(ROOT, NEXT, THIRD), False, 0, "previous subject", id="not_from_root"
        ),
        pytest.param(
            _links((ROOT, NEXT), (NEXT, THIRD)),
            _store(ROOT, THIRD),
            False,
            1,
            "not in the key store",
            id="signer_unknown",
        ),
        pytest.param(
            _links((ROOT, NEXT), (NEXT, THIRD)),
            _store(ROOT, NEXT, THIRD, revoked=(NEXT,)),
            False,
            1,
            "revoked",
            id="signer_revoked",
        ),
        pytest.param(
            [*_links((ROOT, NEXT)), _flip(_links((NEXT, THIRD))[0])],
            _store(ROOT, NEXT),
            False,
            1,
            "signature",
            id="bad_signature_in_link",
        ),
        pytest.param(
            [gen_keys.tampered_subject()],
            _store(ROOT, NEXT, OUTSIDER),
            False,
            0,
            "signature",
            id="tampered_subject",
        ),
    ],
)
def test_verify_chain(links, store, ok, failed, reason):
    result = verify_chain(links, gen_keys.signer(ROOT).kid, store.get)
    assert result.ok is ok
    assert result.failed_index == failed
    if reason:
        assert reason in (result.reason or "")
    else:
        expected_head = links[-1].attestation.subject_kid if links else gen_keys.signer(ROOT).kid
        assert result.head_kid == expected_head and result.links_checked == len(links)


def test_chain_signer_with_different_key_in_store_fails():
    store = _store(ROOT, NEXT)
    root_kid = gen_keys.signer(ROOT).kid
    store[root_kid] = store[root_kid].model_copy(
        update={"public_key": gen_keys.metadata(OUTSIDER).public_key}
    )
    result = verify_chain(_links((ROOT, NEXT)), root_kid, store.get)
    assert not result.ok and "different public key" in (result.reason or "")


def test_key_lookup_may_raise_not_found():
    def lookup(kid: str) -> KeyMetadata:
        raise NotFoundError("no such key", code="key_not_found")

    result = verify_chain(_links((ROOT, NEXT)), gen_keys.signer(ROOT).kid, lookup)
    assert not result.ok and result.failed_index == 0


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("attestation_chain_valid.json", id="valid"),
        pytest.param("attestation_chain_broken_link.json", id="broken_link"),
    ],
)
def test_chain_vectors(name):
    vec = _vector(name)
    store = {m["kid"]: KeyMetadata.model_validate(m) for m in vec["key_store"]}
    links = [SignedAttestation.model_validate(a) for a in vec["attestations"]]
    result = verify_chain(links, vec["trusted_root_kid"], store.get)
    assert result.ok is vec["expected"]["ok"]
    assert result.failed_index == vec["expected"].get("failed_index")
    assert result.head_kid == vec["expected"].get("head_kid")


def test_require_chain_raises_on_broken_link():
    store = _store(ROOT, NEXT, THIRD, OUTSIDER)
    root = gen_keys.signer(ROOT).kid
    assert require_chain(_links((ROOT, NEXT)), root, store.get) == gen_keys.signer(NEXT).kid
    with pytest.raises(IntegrityError) as info:
        require_chain(_links((ROOT, NEXT), (OUTSIDER, THIRD)), root, store.get)
    assert info.value.code == "attestation_chain_broken"
