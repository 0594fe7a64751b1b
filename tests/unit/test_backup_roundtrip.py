"""Backup → restore round trips on real files: byte-equal state, verify-only, rollback, swap-back."""

from __future__ import annotations

import base64
import sqlite3
import tarfile
import threading

import pytest

from core.backup import scan_sources
from core.backup.manifest import Encryption, FileType, TrustedKey
from core.backup.restore import RestoreOptions, journal_path, receipt_signing_bytes, run_restore
from core.errors import ConflictError, IntegrityError, VerificationError
from core.signing import verify_signature
from tests.unit.test_backup_helpers import (
    MASTER,
    NOW,
    SIGNER,
    backup,
    make_state,
    sqlite_dump,
    tree_digest,
    write_keyring,
)


@pytest.mark.parametrize("encrypt", [False, True], ids=["plain", "aes-256-gcm"])
def test_round_trip_restores_byte_equal_state(tmp_path, encrypt):
    live = make_state(tmp_path / "var")
    before = tree_digest(live)
    dumps = {n: sqlite_dump(live / n) for n in ("registry.sqlite", "policies.sqlite")}
    store, result = backup(live, tmp_path / "store", encrypt=encrypt, key_wrapper=MASTER)
    m = result.manifest
    assert m.encryption is (Encryption.AES_256_GCM if encrypt else Encryption.NONE)
    assert m.archive.name.endswith(".tar.gz.enc" if encrypt else ".tar.gz")
    assert {f.path for f in m.files} == {
        "registry.sqlite",
        "policies.sqlite",
        "config.yaml",
        "keyring.json",
        "audit.jsonl",
        f"keys/{SIGNER.kid}.json",
        "lists/high_risk.csv",
    }
    assert m.keyring_version == 3 and m.signature is not None
    # wreck the live state, then restore
    (live / "config.yaml").write_text("broken: true\n")
    (live / "registry.sqlite").write_bytes(b"garbage")
    receipt = run_restore(
        store, m.backup_id, live, SIGNER, now=NOW, options=RestoreOptions(key_wrapper=MASTER)
    )
    after = tree_digest(live)
    for rel, digest in before.items():
        if not rel.endswith((".sqlite", "-wal", "-shm")):
            assert after[rel] == digest, rel
    for f in m.files:
        assert after[f.path] == f.sha3_256.removeprefix("0x")
    assert {n: sqlite_dump(live / n) for n in dumps} == dumps
    assert (live / "keys" / f"{SIGNER.kid}.pem").read_bytes() == SIGNER.to_pem()
    assert (live / "backups" / "older.bin").exists()
    assert [s.status for s in receipt.steps] == ["ok"] * 8
    assert verify_signature(
        SIGNER.public_key_b64, base64.b64decode(receipt.signature.sig), receipt_signing_bytes(receipt)
    )
    assert not journal_path(live).exists()


def test_archive_never_lists_private_key_files(tmp_path):
    live = make_state(tmp_path / "var")
    _, result = backup(live, tmp_path / "store")
    with tarfile.open(tmp_path / "store" / result.manifest.archive.name) as tar:
        names = tar.getnames()
    assert not [n for n in names if n.endswith(".pem")]
    assert not [n for n in names if n.startswith("backups/")]


def test_verify_only_changes_nothing(tmp_path):
    live = make_state(tmp_path / "var")
    store, result = backup(live, tmp_path / "store")
    siblings = sorted(p.name for p in tmp_path.iterdir())
    before = tree_digest(live)
    receipt = run_restore(
        store, result.manifest.backup_id, live, SIGNER, now=NOW, options=RestoreOptions(verify_only=True)
    )
    assert tree_digest(live) == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == siblings
    assert [s.status for s in receipt.steps][-2:] == ["skipped", "skipped"]


def test_keyring_rollback_refused_unless_allowed(tmp_path):
    live = make_state(tmp_path / "var", keyring_version=3)
    store, result = backup(live, tmp_path / "store")
    write_keyring(live, 5)
    before = tree_digest(live)
    with pytest.raises(VerificationError) as err:
        run_restore(store, result.manifest.backup_id, live, SIGNER, now=NOW)
    assert err.value.code == "keyring_rollback"
    assert tree_digest(live) == before
    run_restore(
        store,
        result.manifest.backup_id,
        live,
        SIGNER,
        now=NOW,
        options=RestoreOptions(allow_key_rollback=True),
    )
    assert b'"version": 3' in (live / "keyring.json").read_bytes()


def test_smoke_failure_swaps_back(tmp_path):
    live = make_state(tmp_path / "var")
    store, result = backup(live, tmp_path / "store")
    (live / "config.yaml").write_text("subject: newer\n")
    before = tree_digest(live)

    def smoke(path):
        raise IntegrityError("registry does not answer")

    with pytest.raises(VerificationError) as err:
        run_restore(
            store, result.manifest.backup_id, live, SIGNER, now=NOW, options=RestoreOptions(smoke=smoke)
        )
    assert err.value.code == "restore_smoke_failed"
    assert tree_digest(live) == before
    assert not journal_path(live).exists()
    assert not list(tmp_path.glob("var.staging-*")) and not list(tmp_path.glob(".var.restore-*"))


def test_restore_into_missing_live_dir_with_trusted_keys(tmp_path):
    live = make_state(tmp_path / "var")
    store, result = backup(live, tmp_path / "store")
    target = tmp_path / "fresh"
    keys = (TrustedKey(kid=SIGNER.kid, public_key=SIGNER.public_key_b64),)
    run_restore(
        store, result.manifest.backup_id, target, SIGNER, now=NOW, options=RestoreOptions(trusted_keys=keys)
    )
    assert (target / "config.yaml").read_bytes() == (live / "config.yaml").read_bytes()


def test_unknown_signer_refused(tmp_path):
    from core.signing import Ed25519Signer

    live = make_state(tmp_path / "var")
    store, result = backup(live, tmp_path / "store")
    other = Ed25519Signer.from_seed(b"\x09" * 32)
    keys = (TrustedKey(kid=other.kid, public_key=other.public_key_b64),)
    with pytest.raises(VerificationError) as err:
        run_restore(
            store,
            result.manifest.backup_id,
            live,
            SIGNER,
            now=NOW,
            options=RestoreOptions(trusted_keys=keys, verify_only=True),
        )
    assert err.value.details["status"] == "unknown_kid"


def test_backup_id_is_never_reused(tmp_path):
    live = make_state(tmp_path / "var")
    backup(live, tmp_path / "store", backup_id="backup-fixed")
    with pytest.raises(ConflictError):
        backup(live, tmp_path / "store", backup_id="backup-fixed")


def test_snapshot_is_consistent_while_another_connection_writes(tmp_path):
    live = make_state(tmp_path / "var", rows=2000)
    stop = threading.Event()

    def writer():
        conn = sqlite3.connect(live / "registry.sqlite", timeout=5)
        i = 0
        while not stop.is_set():
            conn.execute("INSERT INTO registry_entries(digest, kid) VALUES (?, 'w')", (f"w{i}",))
            conn.commit()
            i += 1
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        store, result = backup(live, tmp_path / "store")
    finally:
        stop.set()
        thread.join()
    target = tmp_path / "restored"
    keys = (TrustedKey(kid=SIGNER.kid, public_key=SIGNER.public_key_b64),)
    run_restore(
        store, result.manifest.backup_id, target, SIGNER, now=NOW, options=RestoreOptions(trusted_keys=keys)
    )
    conn = sqlite3.connect(target / "registry.sqlite")
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("SELECT count(*) FROM registry_entries").fetchone()[0] >= 2000
    conn.close()
    db = next(f for f in result.manifest.files if f.type is FileType.DATABASE)
    assert db.sqlite.tables == ("registry_entries",) and db.sqlite.user_version == 2


def test_scan_report_of_clean_state_is_empty(tmp_path):
    from core.backup.archive import select_sources
    from core.layout import DataLayout

    live = make_state(tmp_path / "var")
    assert scan_sources(select_sources(DataLayout(live))).findings == ()


def test_round_trip_without_isal_accelerator(tmp_path, monkeypatch):
    """The plain-zlib compression path (used when the optional ``isal`` package is absent)."""
    import core.backup.archive as archive

    monkeypatch.setattr(archive, "_isal", None)
    live = make_state(tmp_path / "var")
    store, result = backup(live, tmp_path / "store")
    run_restore(
        store, result.manifest.backup_id, live, SIGNER, now=NOW, options=RestoreOptions(verify_only=True)
    )
