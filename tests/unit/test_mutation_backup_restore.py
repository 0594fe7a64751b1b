"""Restore refuses backups whose content is wrong even though the manifest signature is valid.

A thief of the signing key (or a buggy backup) can produce a correctly signed manifest over bad
content; every check after the signature must still refuse it. Each scenario repacks a real backup
with one defect, re-signs the manifest, and runs the real restore (verify-only, steps 1-6). Each
kills a mutant of core/backup/restore.py (``make mutation MODULE=core/backup/restore.py``).
"""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
import tarfile

import pytest

from core.backup.manifest import ManifestFile, TrustedKey, manifest_bytes, sign_manifest
from core.backup.restore import (
    RestoreContext,
    RestoreOptions,
    check_policy_store,
    run_restore,
    verify_integrity,
)
from core.backup.storage import MANIFEST_SUFFIX
from core.digest import sha3_hex
from core.errors import ConfigError, IntegrityError, VerificationError
from core.signing import Ed25519Signer
from tests.unit.test_backup_helpers import MASTER, NOW, SIGNER, backup, make_state, write_keyring

OTHER = Ed25519Signer.from_seed(b"\x07" * 32)
SEED_HEX = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
KEYFILE = f"keys/{SIGNER.kid}.json"


@pytest.fixture
def made(tmp_path):
    live = make_state(tmp_path / "var", rows=3)
    store, result = backup(live, tmp_path / "store", backup_id="b1")
    return live, store, result.manifest


def _members(store_dir, manifest):
    raw = gzip.decompress((store_dir / manifest.archive.name).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def forge(store_dir, manifest, edits=None, signer=SIGNER, entry_updates=None, **manifest_update):
    """Repack the (plain) archive with ``edits`` (path -> bytes), fix every digest and re-sign."""
    members = _members(store_dir, manifest)
    members.update(edits or {})
    by_path = {f.path: f for f in manifest.files}
    buf = io.BytesIO()
    files = []
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            old = by_path.get(name) or ManifestFile(
                path=name, sha3_256=sha3_hex(b""), size_bytes=0, type="key_metadata"
            )
            update = {
                "sha3_256": sha3_hex(data),
                "size_bytes": len(data),
                **(entry_updates or {}).get(name, {}),
            }
            files.append(old.model_copy(update=update))
    archive = gzip.compress(buf.getvalue())
    (store_dir / manifest.archive.name).write_bytes(archive)
    info = manifest.archive.model_copy(update={"sha3_256": sha3_hex(archive), "size_bytes": len(archive)})
    fields = {
        "files": tuple(files),
        "total_files": len(files),
        "total_size_bytes": sum(f.size_bytes for f in files),
        "archive": info,
        "signature": None,
        **manifest_update,
    }
    forged = sign_manifest(manifest.model_copy(update=fields), signer)
    (store_dir / f"{manifest.backup_id}{MANIFEST_SUFFIX}").write_bytes(manifest_bytes(forged))
    return forged


def verify(store, live, bid="b1", **opts):
    return run_restore(store, bid, live, SIGNER, now=NOW, options=RestoreOptions(verify_only=True, **opts))


def test_untouched_backup_verifies_and_records_every_check(made):
    live, store, manifest = made
    receipt = verify(store, live)
    steps = {s.name.value: s for s in receipt.steps}
    assert [s.status for s in receipt.steps] == ["ok"] * 6 + ["skipped"] * 2
    checks = {c.id: c for s in receipt.steps for c in s.checks}
    assert checks["manifest_signature"].message == f"manifest signature valid (kid {SIGNER.kid})"
    assert (
        checks["integrity"].message
        == f"{manifest.total_files} files, {manifest.total_size_bytes} bytes verified"
    )
    assert checks["sqlite:registry.sqlite"].message == "integrity ok, 1 tables, schema v2"
    assert checks["keyring"].message == "version 3 (live 3)" and checks["keyring"].status == "ok"
    assert checks["policy_hashes"].status == "warn"
    assert steps["check_key_metadata"].number == 6
    assert receipt.manifest_sha3_256 == sha3_hex((store.root / f"b1{MANIFEST_SUFFIX}").read_bytes())


def test_manifest_of_another_backup_id_is_refused(made):
    live, store, _ = made
    (store.root / f"b2{MANIFEST_SUFFIX}").write_bytes((store.root / f"b1{MANIFEST_SUFFIX}").read_bytes())
    with pytest.raises(IntegrityError, match="manifest is for another backup id") as caught:
        verify(store, live, "b2")
    assert caught.value.details["expected"] == "b2"


def test_signer_revoked_in_the_live_keyring_is_refused(made):
    live, store, _ = made
    ring = json.loads((live / "keyring.json").read_text())
    ring["keys"][0]["status"] = "revoked"
    (live / "keyring.json").write_text(json.dumps(ring))
    with pytest.raises(VerificationError) as caught:
        verify(store, live)
    assert caught.value.code == "backup_signature_invalid"
    assert caught.value.details["status"] == "revoked"


def test_trusted_keys_replace_the_live_keyring(made):
    live, store, _ = made
    with pytest.raises(VerificationError) as caught:
        verify(
            store,
            live,
            trusted_keys=(TrustedKey(kid=SIGNER.kid, public_key=SIGNER.public_key_b64, status="revoked"),),
        )
    assert caught.value.details["status"] == "revoked"


def test_unreadable_live_keyring_needs_trusted_keys(made):
    live, store, _ = made
    (live / "keyring.json").write_text("{not json")
    with pytest.raises(ConfigError, match="no readable live keyring"):
        verify(store, live)
    trusted = (TrustedKey(kid=SIGNER.kid, public_key=SIGNER.public_key_b64),)
    receipt = verify(store, live, trusted_keys=trusted)
    checks = {c.id: c for s in receipt.steps for c in s.checks}
    assert checks["live_keyring"].status == "warn"
    assert checks["keyring"].message == "version 3 (live None)"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param({"private_key": SEED_HEX}, "holds sensitive material", id="seed_in_metadata"),
        pytest.param(
            {"public_key": OTHER.public_key_b64}, "kid does not match its public key", id="kid_mismatch"
        ),
        pytest.param({"public_key": None}, "key metadata unreadable", id="no_public_key"),
    ],
)
def test_bad_key_metadata_is_refused(made, edit, message):
    live, store, manifest = made
    meta = json.loads((live / KEYFILE).read_text())
    meta.update(edit)
    if edit.get("public_key", 1) is None:
        del meta["public_key"]
    forge(store.root, manifest, {KEYFILE: json.dumps(meta).encode()})
    with pytest.raises(IntegrityError, match=message) as caught:
        verify(store, live)
    assert caught.value.details["file"] == KEYFILE


def test_key_metadata_under_another_kids_name_is_refused(made):
    live, store, manifest = made
    name = f"keys/{OTHER.kid}.json"
    forge(store.root, manifest, {name: (live / KEYFILE).read_bytes()})
    with pytest.raises(IntegrityError, match="kid does not match") as caught:
        verify(store, live)
    assert caught.value.details["file"] == name


def test_key_metadata_that_is_not_an_object_is_refused(made):
    live, store, manifest = made
    forge(store.root, manifest, {KEYFILE: b'["kid"]'})
    with pytest.raises(IntegrityError, match="key metadata unreadable"):
        verify(store, live)


def test_keyring_version_must_match_the_manifest(made):
    live, store, manifest = made
    forge(store.root, manifest, keyring_version=4)
    with pytest.raises(IntegrityError, match="keyring version differs from manifest"):
        verify(store, live)


def test_older_keyring_is_refused_then_allowed_with_a_warning(made):
    live, store, _ = made
    write_keyring(live, 5)
    with pytest.raises(VerificationError) as caught:
        run_restore(store, "b1", live, SIGNER, now=NOW, options=RestoreOptions())
    assert caught.value.code == "keyring_rollback"
    assert caught.value.details["expected"] == ">= 5"
    checks = {c.id: c for s in verify(store, live).steps for c in s.checks}  # only verifying: a warning
    assert checks["keyring_decision"].status == "warn"
    assert (
        "backup keyring v3 is older than live v5; a real restore needs a choice"
        in checks["keyring_decision"].message
    )
    receipt = verify(store, live, allow_key_rollback=True)
    checks = {c.id: c for s in receipt.steps for c in s.checks}
    assert (checks["keyring"].status, checks["keyring"].message) == ("warn", "version 3 (live 5)")


def test_same_keyring_version_is_not_a_rollback(made):
    live, store, _ = made
    write_keyring(live, 3)
    assert verify(store, live).steps[5].status == "ok"


def test_schema_version_must_match_the_manifest(made):
    live, store, manifest = made
    entry = next(f for f in manifest.files if f.path == "registry.sqlite")
    sqlite_info = entry.sqlite.model_copy(update={"user_version": 7})
    forge(store.root, manifest, entry_updates={"registry.sqlite": {"sqlite": sqlite_info}})
    with pytest.raises(IntegrityError, match="schema version differs from manifest") as caught:
        verify(store, live)
    assert caught.value.details["file"] == "registry.sqlite"


def test_tables_named_in_the_manifest_must_exist(made):
    live, store, manifest = made
    entry = next(f for f in manifest.files if f.path == "policies.sqlite")
    sqlite_info = entry.sqlite.model_copy(update={"tables": (*entry.sqlite.tables, "ghost")})
    forge(store.root, manifest, entry_updates={"policies.sqlite": {"sqlite": sqlite_info}})
    with pytest.raises(IntegrityError, match="restored database lacks tables") as caught:
        verify(store, live)
    assert caught.value.details["expected"] == ["ghost"]


def test_expected_tables_from_the_caller_must_exist(made):
    live, store, _ = made
    with pytest.raises(IntegrityError, match="lacks tables") as caught:
        verify(store, live, expected_registry_tables=("registry_entries", "audit"))
    assert (caught.value.details["file"], caught.value.details["expected"]) == ("registry.sqlite", ["audit"])


def _index_corrupted_db(tmp_path):
    """A database that opens but whose index disagrees with its table (integrity_check reports it)."""
    path = tmp_path / "corrupt.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE registry_entries(id INTEGER PRIMARY KEY, digest TEXT, kid TEXT)")
    conn.execute("CREATE INDEX by_digest ON registry_entries(digest)")
    conn.execute("INSERT INTO registry_entries(digest, kid) VALUES ('zzzzzzzzzzzzzzzz', 'k')")
    conn.execute("PRAGMA user_version=2")
    conn.commit()
    conn.close()
    raw = bytearray(path.read_bytes())
    at = raw.index(b"zzzzzzzzzzzzzzzz")  # the table's copy (page 2), not the index's (page 3)
    raw[at] = ord("y")
    path.write_bytes(bytes(raw))
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA integrity_check").fetchall() != [("ok",)]
    assert check.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    check.close()
    return path.read_bytes()


def test_failed_integrity_check_is_refused(made, tmp_path):
    live, store, manifest = made
    forge(store.root, manifest, {"registry.sqlite": _index_corrupted_db(tmp_path)})
    with pytest.raises(IntegrityError, match="PRAGMA integrity_check failed") as caught:
        verify(store, live)
    assert caught.value.details["file"] == "registry.sqlite"
    assert verify(store, live, quick_check=True).steps[3].status == "ok"


def test_database_that_does_not_open_is_refused(made):
    live, store, manifest = made
    forge(store.root, manifest, {"registry.sqlite": b"not a database at all" * 300})
    with pytest.raises(IntegrityError, match="restored database unreadable") as caught:
        verify(store, live)
    assert caught.value.details["file"] == "registry.sqlite"


def test_backup_without_keyring_or_database_warns(tmp_path):
    live = tmp_path / "var"
    live.mkdir()
    (live / "config.yaml").write_text("subject: X\n")
    store, _ = backup(live, tmp_path / "store", backup_id="b1")
    trusted = (TrustedKey(kid=SIGNER.kid, public_key=SIGNER.public_key_b64),)
    receipt = verify(store, live, trusted_keys=trusted)
    checks = {c.id: c for s in receipt.steps for c in s.checks}
    assert (checks["keyring"].status, checks["keyring"].message) == ("warn", "not in this backup")
    assert checks["sqlite:database"].status == "warn"
    assert checks["sqlite:policy_store"].status == "warn"


def test_policy_rehash_problems_are_refused(made):
    live, store, _ = made
    with pytest.raises(IntegrityError, match="policy or IR hash mismatch") as caught:
        verify(store, live, policy_rehash=lambda db: ["sha3-256:ab recomputes to sha3-256:cd"])
    assert caught.value.details["problems"] == ["sha3-256:ab recomputes to sha3-256:cd"]
    receipt = verify(store, live, policy_rehash=lambda db: [])
    checks = {c.id: c for s in receipt.steps for c in s.checks}
    assert (checks["policy_hashes"].status, checks["policy_hashes"].message) == ("ok", "recomputed")


@pytest.mark.parametrize(
    ("encrypt", "code"),
    [
        pytest.param(False, "backup_truncated", id="plain"),
        pytest.param(True, "backup_chunk_invalid", id="encrypted"),
    ],
)
def test_trailing_data_after_the_archive_is_refused(tmp_path, encrypt, code):
    """One byte appended and the manifest re-signed over the longer archive: the stream readers refuse it."""
    live = make_state(tmp_path / "var", rows=3)
    store, result = backup(live, tmp_path / "store", backup_id="b1", encrypt=encrypt, key_wrapper=MASTER)
    manifest = result.manifest
    path = store.root / manifest.archive.name
    data = path.read_bytes() + b"\x00"
    path.write_bytes(data)
    info = manifest.archive.model_copy(update={"sha3_256": sha3_hex(data), "size_bytes": len(data)})
    forged = sign_manifest(manifest.model_copy(update={"archive": info, "signature": None}), SIGNER)
    (store.root / f"b1{MANIFEST_SUFFIX}").write_bytes(manifest_bytes(forged))
    with pytest.raises(IntegrityError) as caught:
        verify(store, live, key_wrapper=MASTER)
    assert caught.value.code == code


def test_archive_size_alone_differing_is_refused(made):
    live, store, manifest = made
    info = manifest.archive.model_copy(update={"size_bytes": manifest.archive.size_bytes + 1})
    forged = sign_manifest(manifest.model_copy(update={"archive": info, "signature": None}), SIGNER)
    (store.root / f"b1{MANIFEST_SUFFIX}").write_bytes(manifest_bytes(forged))
    with pytest.raises(IntegrityError) as caught:
        verify(store, live)
    assert caught.value.code == "backup_digest_mismatch"


def test_steps_out_of_order_are_a_config_error(tmp_path):
    ctx = RestoreContext(backup_id="b1", live_dir=tmp_path / "var")
    with pytest.raises(ConfigError, match="restore step run before fetch") as caught:
        verify_integrity(ctx)
    assert caught.value.details["field"] == "manifest"
    with pytest.raises(ConfigError):
        check_policy_store(ctx)
