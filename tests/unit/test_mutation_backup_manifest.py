"""The backup manifest's acceptance rules, one named case each (core/backup/manifest.py).

Each case kills a mutant of core/backup/manifest.py (``make mutation MODULE=core/backup/manifest.py``).
"""

import base64
import json

import pytest
from pydantic import ValidationError

from core.backup.manifest import (
    ArchiveInfo,
    BackupManifest,
    KeyStatus,
    ManifestFile,
    SignatureStatus,
    TrustedKey,
    check_backup_id,
    check_manifest_signature,
    check_relative_path,
    manifest_bytes,
    parse_keyring,
    parse_manifest,
    sign_manifest,
    signing_bytes,
    verify_manifest_signature,
)
from core.canonical import canonical_bytes
from core.errors import IntegrityError, InvalidInputError, VerificationError
from core.signing import Ed25519Signer

SIGNER = Ed25519Signer.from_seed(bytes(range(32)))
OTHER = Ed25519Signer.from_seed(bytes(32))
DIGEST = "0x" + "ab" * 32


def _file(path="config.yaml", size=5, type="configuration"):
    return ManifestFile(path=path, sha3_256=DIGEST, size_bytes=size, type=type)


def _manifest(**update):
    fields = dict(
        created_at="2026-12-06T10:00:00Z",
        created_by="test",
        backup_id="b-1",
        system_version="1.0",
        keyring_version=1,
        files=(_file(), _file("keyring.json", 7, "keyring")),
        total_files=2,
        total_size_bytes=12,
        archive=ArchiveInfo(name="b-1.tar.gz", sha3_256=DIGEST, size_bytes=99),
    )
    fields.update(update)
    return BackupManifest(**fields)


def _key(signer=SIGNER, status=KeyStatus.ACTIVE):
    return TrustedKey(kid=signer.kid, public_key=signer.public_key_b64, status=status)


@pytest.mark.parametrize("path", ["", "/etc/passwd", "a\\b", "a\x00b", "a//b", "./a", "a/../b", "..", "a/"])
def test_unsafe_archive_paths_are_refused(path):
    with pytest.raises(InvalidInputError) as caught:
        check_relative_path(path)
    assert caught.value.message == "unsafe archive path"
    assert caught.value.details == {"field": "path", "found": path}


def test_unsafe_path_is_quoted_up_to_200_characters():
    with pytest.raises(InvalidInputError) as caught:
        check_relative_path("../" + "a" * 300)
    assert caught.value.details["found"] == ("../" + "a" * 300)[:200]


@pytest.mark.parametrize("path", ["config.yaml", "keys/a.json", "lists/x..y.csv", ".hidden"])
def test_safe_archive_paths_are_kept(path):
    assert check_relative_path(path) == path


@pytest.mark.parametrize("bid", ["", "-x", "a/b", "a" * 129, "a b", "é"])
def test_bad_backup_ids_are_refused_naming_the_pattern(bid):
    with pytest.raises(InvalidInputError) as caught:
        check_backup_id(bid)
    assert caught.value.message == "invalid backup id"
    assert caught.value.details == {"field": "backup_id", "expected": "[A-Za-z0-9][A-Za-z0-9._-]{0,127}"}


@pytest.mark.parametrize("bid", ["a", "A" * 128, "2026-12-06T10.00_x"])
def test_good_backup_ids(bid):
    assert check_backup_id(bid) == bid


@pytest.mark.parametrize(
    ("update", "message"),
    [
        pytest.param({"files": (_file(), _file())}, "duplicate file path", id="duplicate_path"),
        pytest.param({"total_files": 3}, "total_files does not match", id="total_files"),
        pytest.param({"total_size_bytes": 13}, "total_size_bytes does not match", id="total_size"),
        pytest.param({"backup_id": "../x"}, "invalid backup id", id="backup_id"),
    ],
)
def test_inconsistent_manifests_are_refused(update, message):
    with pytest.raises((ValidationError, InvalidInputError), match=message):
        _manifest(**update)


def test_signature_covers_domain_and_everything_but_the_signature():
    manifest = _manifest()
    data = signing_bytes(manifest)
    assert data == b"backup.manifest.v1\n" + canonical_bytes(manifest)
    signed = sign_manifest(manifest, SIGNER)
    assert signing_bytes(signed) == data
    assert signed.signature is not None and signed.signature.kid == SIGNER.kid
    assert base64.b64decode(signed.signature.sig) == SIGNER.sign(data)


@pytest.mark.parametrize(
    ("manifest", "keys", "status", "message"),
    [
        pytest.param(_manifest(), (_key(),), SignatureStatus.MISSING, "manifest is not signed", id="missing"),
        pytest.param(
            sign_manifest(_manifest(), SIGNER),
            (_key(OTHER),),
            SignatureStatus.UNKNOWN_KID,
            "unknown signing kid",
            id="unknown_kid",
        ),
        pytest.param(
            sign_manifest(_manifest(), SIGNER),
            (_key(SIGNER, KeyStatus.REVOKED),),
            SignatureStatus.REVOKED,
            "signing key is revoked",
            id="revoked",
        ),
        pytest.param(
            sign_manifest(_manifest(), SIGNER).model_copy(update={"backup_id": "b-2"}),
            (_key(),),
            SignatureStatus.INVALID,
            "signature does not verify",
            id="altered_after_signing",
        ),
    ],
)
def test_signature_statuses(manifest, keys, status, message):
    result = check_manifest_signature(manifest, keys)
    assert (result.status, result.message) == (status, message)
    assert result.kid == (manifest.signature.kid if manifest.signature else None)
    with pytest.raises(VerificationError) as caught:
        verify_manifest_signature(manifest, keys)
    assert caught.value.code == "backup_signature_invalid"
    assert caught.value.message == f"backup manifest signature: {message}"
    assert caught.value.details.get("status") == status.value
    assert caught.value.details.get("kid") == result.kid


def test_signature_by_another_key_under_the_trusted_kid_is_invalid():
    signed = sign_manifest(_manifest(), OTHER)
    forged = signed.model_copy(update={"signature": signed.signature.model_copy(update={"kid": SIGNER.kid})})
    assert check_manifest_signature(forged, (_key(),)).status is SignatureStatus.INVALID


@pytest.mark.parametrize("sig", ["not base64!", "", base64.b64encode(b"x" * 64).decode()])
def test_malformed_signature_text_is_invalid_not_a_crash(sig):
    signed = sign_manifest(_manifest(), SIGNER)
    bad = signed.model_copy(update={"signature": signed.signature.model_copy(update={"sig": sig})})
    result = check_manifest_signature(bad, (_key(),))
    assert result.status is SignatureStatus.INVALID
    assert result.kid == SIGNER.kid


@pytest.mark.parametrize("junk", ["*", "\n", " "])
def test_signature_text_with_non_base64_characters_is_invalid(junk):
    """Strict base64: a valid signature with a stray character is not quietly repaired."""
    signed = sign_manifest(_manifest(), SIGNER)
    sig = signed.signature.sig
    bad = signed.model_copy(
        update={"signature": signed.signature.model_copy(update={"sig": sig[:8] + junk + sig[8:]})}
    )
    assert check_manifest_signature(bad, (_key(),)).status is SignatureStatus.INVALID
    assert check_manifest_signature(signed, (_key(),)).status is SignatureStatus.OK


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(_key(SIGNER), id="active"),
        pytest.param(
            _key(SIGNER, KeyStatus.RETIRED).model_copy(update={"retired_at": "2026-12-07T00:00:00Z"}),
            id="retired_after_signing",
        ),
    ],
)
def test_valid_signature_by_a_key_active_when_it_signed(key):
    signed = sign_manifest(_manifest(), SIGNER)
    keys = (_key(OTHER), key)
    result = verify_manifest_signature(signed, keys)
    assert (result.status, result.kid, result.message) == (
        SignatureStatus.OK,
        SIGNER.kid,
        "manifest signature valid",
    )


def test_stored_bytes_round_trip_and_name_the_source_on_errors():
    signed = sign_manifest(_manifest(), SIGNER)
    data = manifest_bytes(signed)
    assert parse_manifest(data) == signed
    pretty = json.dumps(json.loads(data), indent=1).encode()
    with pytest.raises(IntegrityError) as caught:
        parse_manifest(pretty, source="b-1.manifest.json")
    assert caught.value.message == "backup manifest is not in canonical form"
    assert caught.value.details["file"] == "b-1.manifest.json"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"\xff", "backup manifest is unreadable: ", id="not_utf8"),
        pytest.param(b"{", "backup manifest is unreadable: Expecting property name", id="not_json"),
        pytest.param(
            b"{}", "backup manifest is unreadable: created_at: Field required", id="shape_names_field"
        ),
    ],
)
def test_unreadable_manifests(data, message):
    with pytest.raises(IntegrityError) as caught:
        parse_manifest(data)
    assert caught.value.message.startswith(message)
    assert caught.value.details["file"] == "manifest"


def test_nested_validation_error_names_the_dotted_location():
    doc = json.loads(manifest_bytes(_manifest()))
    doc["files"][1]["sha3_256"] = "0x12"
    with pytest.raises(IntegrityError, match=r"unreadable: files\.1\.sha3_256: "):
        parse_manifest(canonical_bytes(doc))


def _keyring(*keys, version=3):
    return json.dumps({"version": version, "keys": list(keys), "extra": True}).encode()


def test_keyring_view_reads_keys_and_statuses():
    data = _keyring(
        {"kid": SIGNER.kid, "public_key": SIGNER.public_key_b64, "status": "revoked", "x": 1},
        {"kid": OTHER.kid, "public_key": OTHER.public_key_b64},
    )
    view = parse_keyring(data)
    assert view.version == 3
    assert [(k.kid, k.status) for k in view.keys] == [
        (SIGNER.kid, KeyStatus.REVOKED),
        (OTHER.kid, KeyStatus.ACTIVE),
    ]


def test_keyring_kid_must_match_its_public_key():
    data = _keyring({"kid": SIGNER.kid, "public_key": OTHER.public_key_b64})
    with pytest.raises(IntegrityError) as caught:
        parse_keyring(data, source="live/keyring.json")
    assert caught.value.message == "keyring kid does not match its public key"
    assert caught.value.details == {"file": "live/keyring.json", "field": SIGNER.kid}


def test_unreadable_keyring_json_error_is_quoted():
    with pytest.raises(InvalidInputError) as caught:
        parse_keyring(b"{")
    assert caught.value.message.startswith("keyring is unreadable: Expecting property name")


@pytest.mark.parametrize(
    "data",
    [b"\xff", b"[]", _keyring(version=-1), b'{"keys": []}'],
    ids=["not_utf8", "list", "negative", "no_version"],
)
def test_unreadable_keyrings_name_the_file(data):
    with pytest.raises(InvalidInputError, match="keyring is unreadable") as caught:
        parse_keyring(data)
    assert caught.value.details["file"] == "keyring.json"


MADE = "2026-12-06T10:00:00Z"  # _manifest()'s created_at


def _when(**update):
    return _key(SIGNER).model_copy(update=update)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        pytest.param(
            _when(status=KeyStatus.PENDING), "signing key is pending (it never signs)", id="pending"
        ),
        pytest.param(
            _when(status=KeyStatus.RETIRED),
            f"signing key was retired (date unknown) when the manifest was made ({MADE})",
            id="retired_date_unknown",
        ),
        pytest.param(
            _when(status=KeyStatus.RETIRED, retired_at="2026-12-01T00:00:00Z"),
            f"signing key was retired (2026-12-01T00:00:00Z) when the manifest was made ({MADE})",
            id="retired_before",
        ),
        pytest.param(
            _when(status=KeyStatus.RETIRED, retired_at=MADE),
            f"signing key was retired ({MADE}) when the manifest was made ({MADE})",
            id="retired_at_the_same_instant",
        ),
        pytest.param(
            _when(valid_from="2026-12-06T10:00:01+00:00"),
            f"signing key is not valid before 2026-12-06T10:00:01+00:00; the manifest was made {MADE}",
            id="not_yet_valid",
        ),
        pytest.param(
            _when(valid_to="2026-12-06T09:59:59+00:00"),
            f"signing key expired at 2026-12-06T09:59:59+00:00; the manifest was made {MADE}",
            id="expired",
        ),
    ],
)
def test_a_key_not_active_when_the_manifest_was_made_is_refused_saying_why(key, message):
    """A genuine signature, but by a key the keyring says could not sign at ``created_at``."""
    signed = sign_manifest(_manifest(), SIGNER)
    result = check_manifest_signature(signed, (key,))
    assert (result.status, result.kid, result.message) == (SignatureStatus.NOT_ACTIVE, SIGNER.kid, message)
    with pytest.raises(VerificationError) as caught:
        verify_manifest_signature(signed, (key,))
    assert caught.value.details.get("status") == "key_not_active"


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(_when(valid_from="2026-12-06T10:00:00+00:00"), id="valid_from_the_same_instant"),
        pytest.param(_when(valid_to="2026-12-06T10:00:00+00:00"), id="valid_to_the_same_instant"),
        pytest.param(
            _when(valid_from="2026-12-01T00:00:00Z", valid_to="2026-12-31T00:00:00Z"), id="inside_the_window"
        ),
    ],
)
def test_a_key_whose_window_includes_the_instant_signs(key):
    signed = sign_manifest(_manifest(), SIGNER)
    assert check_manifest_signature(signed, (key,)).status is SignatureStatus.OK


def test_a_keyring_time_that_is_not_an_instant_is_an_integrity_error_quoting_it():
    bad = "the first of December, twenty twenty-six, noon"
    signed = sign_manifest(_manifest(), SIGNER)
    with pytest.raises(IntegrityError) as caught:
        check_manifest_signature(signed, (_when(valid_from=bad),))
    assert caught.value.message == "keyring or manifest time is not an ISO 8601 instant"
    assert caught.value.details["found"] == bad[:40]


def _pg_manifest():
    from core.backup.manifest import PgSnapshotInfo
    from core.store.url import Engine

    info = PgSnapshotInfo(server_version="15.18", schema_versions={"registry": 1}, sequences={"seq": 3})
    return _manifest(engine=Engine.POSTGRESQL, postgresql=info)


def test_a_backup_restores_only_into_the_engine_it_was_taken_from():
    from core.backup.manifest import backup_engine, require_engine
    from core.errors import ConfigError
    from core.store.url import Engine

    sqlite, pg = _manifest(), _pg_manifest()
    assert (backup_engine(sqlite), backup_engine(pg)) == (Engine.SQLITE, Engine.POSTGRESQL)
    require_engine(sqlite, Engine.SQLITE)
    require_engine(pg, Engine.POSTGRESQL)
    with pytest.raises(ConfigError) as into_sqlite:
        require_engine(pg, Engine.SQLITE)
    assert into_sqlite.value.code == "restore_engine_mismatch"
    assert into_sqlite.value.message == (
        "backup b-1 holds the PostgreSQL state but this node keeps its state in SQLite files; restore it "
        "with CAP_DATABASE_URL pointing at a PostgreSQL database (cross-engine restore is not supported)"
    )
    assert into_sqlite.value.details == {"field": "engine", "found": "postgresql", "expected": "sqlite"}
    with pytest.raises(ConfigError) as into_pg:
        require_engine(sqlite, Engine.POSTGRESQL)
    assert into_pg.value.message == (
        "backup b-1 holds the SQLite files state but this node keeps its state in PostgreSQL; restore it "
        "with CAP_DATABASE_URL unset (SQLite) (cross-engine restore is not supported)"
    )
    assert into_pg.value.details == {"field": "engine", "found": "sqlite", "expected": "postgresql"}


def test_postgresql_snapshot_info_goes_with_the_postgresql_engine_only():
    from core.store.url import Engine

    with pytest.raises(ValidationError, match="goes with engine postgresql"):
        _manifest(engine=Engine.POSTGRESQL)
    with pytest.raises(ValidationError, match="goes with engine postgresql"):
        _manifest(postgresql=_pg_manifest().postgresql)
