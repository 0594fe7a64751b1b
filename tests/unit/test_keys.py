"""Key metadata (cap-key.v1), the KID and fingerprint rules, and the on-disk key store."""

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.canonical import canonical_bytes
from core.errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    KeyError_,
    NotFoundError,
    RotationError,
)
from core.keys import (
    KeyMetadata,
    KeyStatus,
    KeyStore,
    build_metadata,
    fingerprint,
    format_timestamp,
    parse_metadata,
    parse_timestamp,
)
from core.layout import DataLayout
from core.signing import Ed25519Signer, derive_kid, load_public_key
from tests.vectorgen import VECTORS_DIR, gen_keys

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def _vector(name: str) -> dict:
    return json.loads((VECTORS_DIR / "keys" / name).read_text(encoding="utf-8"))


@pytest.fixture
def store(tmp_path) -> KeyStore:
    return KeyStore(DataLayout(tmp_path))


# --- KID, fingerprint, timestamps ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seed",
    [
        pytest.param(bytes(range(32)), id="range_0_32"),
        pytest.param(bytes(32), id="zeros"),
        pytest.param(bytes([0xFF] * 32), id="ones"),
    ],
)
def test_kid_is_32_hex_of_blake3_over_base64(seed):
    signer = Ed25519Signer.from_seed(seed)
    meta = build_metadata(signer.public_key_b64, "ACME", NOW)
    assert len(meta.kid) == 32 and int(meta.kid, 16) >= 0
    assert meta.kid == derive_kid(meta.public_key) == signer.kid


def test_kid_vector_matches_implementation():
    vec = _vector("kid_from_seed.json")
    assert derive_kid(vec["public_key"]) == vec["kid"]
    assert fingerprint(vec["public_key"]) == vec["fingerprint"]
    assert Ed25519Signer.from_seed(gen_keys.SEED_ROOT).public_key_b64 == vec["public_key"]


def test_fingerprint_is_sha3_of_raw_key_under_sha256_label():
    pub = Ed25519Signer.from_seed(bytes(range(32))).public_key_b64
    raw = load_public_key(pub).public_bytes_raw()
    assert fingerprint(pub) == "sha256:" + hashlib.sha3_256(raw).digest()[:16].hex()
    assert fingerprint(pub) != "sha256:" + hashlib.sha256(raw).digest()[:16].hex()


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        pytest.param(datetime(2025, 1, 1, tzinfo=UTC), "2025-01-01T00:00:00Z", id="utc"),
        pytest.param(
            datetime(2025, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC), "2025-01-01T00:00:00Z", id="truncates"
        ),
        pytest.param(
            datetime(2025, 1, 1, 4, 0, tzinfo=timezone(timedelta(hours=2))),
            "2025-01-01T02:00:00Z",
            id="offset_converted",
        ),
    ],
)
def test_timestamps_are_rfc3339_utc_with_z(moment, text):
    assert format_timestamp(moment) == text
    assert parse_timestamp(text) == moment.replace(microsecond=0)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("2025-01-01T00:00:00+00:00", id="offset_form"),
        pytest.param("2025-01-01 00:00:00Z", id="space"),
        pytest.param("yesterday", id="words"),
        pytest.param("2025-13-45T99:99:99Z", id="month_13"),
        pytest.param("2025-02-30T00:00:00Z", id="february_30"),
    ],
)
def test_bad_timestamps_are_refused(text):
    """Right shape but no such moment is refused the same way (it was a ValueError, a stack trace)."""
    with pytest.raises(InvalidInputError) as exc:
        parse_timestamp(text, field="valid_to")
    assert exc.value.details["field"] == "valid_to"


def test_naive_datetime_is_refused():
    with pytest.raises(InvalidInputError):
        format_timestamp(datetime(2025, 1, 1))


# --- metadata record -------------------------------------------------------------------------------------


def test_metadata_field_order_and_validity_window():
    vec = _vector("key_metadata_v1.json")
    meta = gen_keys.metadata(gen_keys.SEED_ROOT)
    assert canonical_bytes(meta).decode() == vec["canonical"]
    assert list(json.loads(vec["canonical"])) == [
        "schema",
        "kid",
        "owner",
        "created_at",
        "valid_from",
        "valid_to",
        "algorithm",
        "status",
        "usage",
        "public_key",
        "fingerprint",
    ]
    assert parse_metadata(vec["pretty"].encode(), source="vector") == meta
    assert meta.valid_to == "2027-01-01T00:00:00Z"  # 730 days from 2025-01-01


def test_metadata_comment_is_last_and_optional():
    meta = build_metadata(Ed25519Signer.from_seed(bytes(32)).public_key_b64, "ACME", NOW, comment="hsm")
    assert list(json.loads(canonical_bytes(meta)))[-1] == "comment"


@pytest.mark.parametrize(
    ("mutate", "error", "code"),
    [
        pytest.param(
            lambda d: d.update(kid=gen_keys.metadata(gen_keys.SEED_NEXT).kid),
            IntegrityError,
            "key_kid_mismatch",
            id="wrong_kid",
        ),
        pytest.param(
            lambda d: d.update(fingerprint="sha256:" + "0" * 32),
            IntegrityError,
            "key_fingerprint_mismatch",
            id="wrong_fingerprint",
        ),
        pytest.param(lambda d: d.update(algorithm="rsa"), InvalidInputError, "invalid_input", id="algorithm"),
        pytest.param(
            lambda d: d.update(schema="cap-key.v2"), InvalidInputError, "invalid_input", id="schema"
        ),
        pytest.param(
            lambda d: d.update(public_key="AAAA"), InvalidInputError, "invalid_input", id="short_key"
        ),
        pytest.param(lambda d: d.update(extra=1), InvalidInputError, "invalid_input", id="unknown_field"),
        pytest.param(lambda d: d.update(status="lost"), InvalidInputError, "invalid_input", id="status"),
    ],
)
def test_bad_metadata_is_refused_naming_the_file(mutate, error, code):
    data = json.loads(_vector("key_metadata_v1.json")["canonical"])
    mutate(data)
    with pytest.raises(error) as info:
        parse_metadata(json.dumps(data).encode(), source="keys/x.json")
    assert info.value.code == code
    assert info.value.details["file"] == "keys/x.json"


def test_wrong_kid_vector_is_refused():
    vec = _vector("key_metadata_wrong_kid.json")
    with pytest.raises(IntegrityError) as info:
        parse_metadata(json.dumps(vec["metadata"]).encode(), source="v")
    assert info.value.code == vec["expected_error"]


# --- the store -------------------------------------------------------------------------------------------


def test_generate_writes_0600_pem_and_pretty_metadata(store):
    meta = store.generate("ACME", NOW)
    pem = store.directory / f"{meta.kid}.pem"
    assert os.stat(pem).st_mode & 0o777 == 0o600
    assert os.stat(store.directory).st_mode & 0o077 == 0
    text = (store.directory / f"{meta.kid}.json").read_text()
    assert text.startswith('{\n  "schema": "cap-key.v1",')
    assert store.get(meta.kid) == meta
    assert store.signer(meta.kid).kid == meta.kid
    assert "PRIVATE" not in text and "PRIVATE" not in repr(meta)


def test_signer_repr_and_metadata_never_show_private_material(store):
    meta = store.generate("ACME", NOW)
    signer = store.signer(meta.kid)
    pem_body = signer.to_pem().decode().splitlines()[1]
    assert pem_body not in repr(signer) and pem_body not in meta.model_dump_json()


@pytest.mark.parametrize(
    "mode", [pytest.param(0o644, id="0644"), pytest.param(0o640, id="0640"), pytest.param(0o604, id="0604")]
)
def test_signer_refuses_group_or_world_readable_pem(store, mode):
    meta = store.generate("ACME", NOW)
    pem = store.directory / f"{meta.kid}.pem"
    os.chmod(pem, mode)
    with pytest.raises(KeyError_) as info:
        store.signer(meta.kid)
    assert info.value.code == "key_file_permissions"
    assert info.value.details["file"] == str(pem)
    assert "0600" in info.value.diagnostics()


def test_signer_refuses_pem_of_another_key(store):
    a, b = store.generate("ACME", NOW), store.generate("ACME", NOW)
    pem_b = (store.directory / f"{b.kid}.pem").read_bytes()
    (store.directory / f"{a.kid}.pem").write_bytes(pem_b)
    with pytest.raises(KeyError_) as info:
        store.signer(a.kid)
    assert info.value.code == "key_kid_mismatch"


def test_signer_without_private_key(store):
    meta = store.import_public(gen_keys.metadata(gen_keys.SEED_ROOT))
    assert not store.has_private_key(meta.kid)
    with pytest.raises(KeyError_) as info:
        store.signer(meta.kid)
    assert info.value.code == "private_key_missing"


def test_metadata_file_with_wrong_kid_is_refused(store):
    meta = store.import_public(gen_keys.metadata(gen_keys.SEED_ROOT))
    path = store.directory / f"{meta.kid}.json"
    data = json.loads(path.read_text())
    data["kid"] = gen_keys.metadata(gen_keys.SEED_NEXT).kid
    path.write_text(json.dumps(data))
    with pytest.raises(IntegrityError) as info:
        store.get(meta.kid)
    assert info.value.details["file"] == str(path)


def test_metadata_under_another_kids_name_is_refused(store):
    meta = store.import_public(gen_keys.metadata(gen_keys.SEED_ROOT))
    other = gen_keys.metadata(gen_keys.SEED_NEXT).kid
    (store.directory / f"{meta.kid}.json").rename(store.directory / f"{other}.json")
    with pytest.raises(IntegrityError):
        store.get(other)


@pytest.mark.parametrize(
    "kid",
    [
        pytest.param("../../etc/passwd", id="traversal"),
        pytest.param("ABC", id="short"),
        pytest.param("E" * 32, id="uppercase"),
    ],
)
def test_get_refuses_malformed_kids(store, kid):
    with pytest.raises(InvalidInputError):
        store.get(kid)


def test_get_unknown_kid(store):
    with pytest.raises(NotFoundError) as info:
        store.get("0" * 32)
    assert info.value.code == "key_not_found"


def test_import_public_is_idempotent_and_refuses_conflicts(store):
    meta = gen_keys.metadata(gen_keys.SEED_ROOT)
    assert store.import_public(meta) == store.import_public(meta)
    with pytest.raises(ConflictError):
        store.import_public(meta.model_copy(update={"owner": "Other"}))


def test_import_public_refuses_inconsistent_metadata(store):
    bad = gen_keys.metadata(gen_keys.SEED_ROOT).model_copy(update={"kid": "0" * 32})
    with pytest.raises(IntegrityError):
        store.import_public(bad)


def test_list_is_sorted_oldest_first(store):
    late = store.generate("ACME", NOW + timedelta(days=1))
    early = store.generate("ACME", NOW)
    assert [m.kid for m in store.list()] == [early.kid, late.kid]
    assert KeyStore(DataLayout(store.directory / "nowhere")).list() == []


@pytest.mark.parametrize(
    ("start", "target", "allowed"),
    [
        pytest.param(KeyStatus.PENDING, KeyStatus.ACTIVE, True, id="pending_to_active"),
        pytest.param(KeyStatus.ACTIVE, KeyStatus.RETIRED, True, id="active_to_retired"),
        pytest.param(KeyStatus.RETIRED, KeyStatus.ACTIVE, True, id="retired_to_active_rollback"),
        pytest.param(KeyStatus.ACTIVE, KeyStatus.REVOKED, True, id="active_to_revoked"),
        pytest.param(KeyStatus.REVOKED, KeyStatus.ACTIVE, False, id="revoked_is_terminal"),
        pytest.param(KeyStatus.REVOKED, KeyStatus.REVOKED, True, id="revoked_noop"),
    ],
)
def test_set_status(store, start, target, allowed):
    meta = store.generate("ACME", NOW, status=start)
    if allowed:
        assert store.set_status(meta.kid, target).status is target
        assert store.get(meta.kid).status is target
    else:
        with pytest.raises(RotationError):
            store.set_status(meta.kid, target)


def test_revoked_key_cannot_sign(store):
    meta = store.generate("ACME", NOW)
    store.set_status(meta.kid, KeyStatus.REVOKED)
    with pytest.raises(KeyError_) as info:
        store.signer(meta.kid)
    assert info.value.code == "key_revoked"


def test_metadata_model_is_frozen():
    meta = gen_keys.metadata(gen_keys.SEED_ROOT)
    with pytest.raises(ValueError):
        meta.owner = "x"  # type: ignore[misc]
    assert isinstance(meta, KeyMetadata)
