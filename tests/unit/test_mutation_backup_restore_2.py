"""Restore's later checks and its receipt, step by step on one small backup built once per module.

The receipt is what an operator keeps as evidence of a restore: every step, in order, with the checks it
ran. These tests pin that record and the errors of steps 6-8 (attestations, completeness, the rollback
floor, the generation, smoke checks) by calling the step functions on a real backup, so each mutant of
core/backup/restore.py costs milliseconds instead of whole restores
(``make mutation MODULE=core/backup/restore.py``).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from core.attestation import attest
from core.backup.archive import READ_CHUNK
from core.backup.manifest import ArchiveInfo, TrustedKey
from core.backup.restore import (
    RestoreContext,
    RestoreOptions,
    _check_attestation_file,
    _check_key_file,
    _check_keyring_chain,
    build_receipt,
    check_archive_digest,
    check_key_metadata,
    check_policy_store,
    check_registry,
    default_smoke,
    fetch_backup,
    prepare_staging,
    run_restore,
    swap_in,
    verify_integrity,
)
from core.backup.storage import MANIFEST_SUFFIX, FileStore
from core.backup.swap import Recovery
from core.digest import sha3_hex
from core.errors import ConfigError, IntegrityError, InvalidInputError, VerificationError
from core.keyring import bootstrap_keyring, keyring_file_bytes
from core.keyring_chain import LinkSigner, append_link
from core.keys import build_metadata
from core.signing import Ed25519Signer
from tests.unit.test_backup_helpers import NOW, SIGNER, backup, make_state, write_keyring

SUBJECT = Ed25519Signer.from_seed(b"\x09" * 32)
OTHER_OPERATOR = Ed25519Signer.from_seed(b"\x0a" * 32)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A live state and its plain backup ``b1``, made once; tests restore into copies of the live dir."""
    root = tmp_path_factory.mktemp("restore2")
    live = make_state(root / "var", rows=3)
    store, _ = backup(live, root / "store", backup_id="b1")
    return live, store


@pytest.fixture
def live(built, tmp_path):
    original, _ = built
    copy = tmp_path / "var"
    shutil.copytree(original, copy, symlinks=True)
    return copy


@pytest.fixture
def store(built):
    return built[1]


def staged(store, live, trusted=None, **ctx_fields):
    """Steps 1-3 run for real: the backup fetched, verified and moved into staging."""
    ctx = RestoreContext(backup_id="b1", live_dir=live, started_at=NOW, **ctx_fields)
    fetch_backup(ctx, store, trusted)
    verify_integrity(ctx)
    prepare_staging(ctx)
    return ctx


def test_receipt_records_every_step_and_check_in_order(store, live):
    receipt = run_restore(store, "b1", live, SIGNER, now=NOW)
    steps = [(s.number, s.name.value, s.status, [c.id for c in s.checks]) for s in receipt.steps]
    assert steps == [
        (1, "fetch", "ok", ["manifest_signature", "archive_fetched"]),
        (2, "verify_integrity", "ok", ["integrity"]),
        (3, "prepare_staging", "ok", ["staging"]),
        (4, "check_registry", "ok", ["sqlite:registry.sqlite"]),
        (5, "check_policy_store", "ok", ["sqlite:policies.sqlite", "policy_hashes"]),
        (6, "check_key_metadata", "ok", ["keyring_signature", "keyring"]),
        (7, "swap", "ok", ["keyring_floor", "registry_high_water", "generation", "carried_over", "swap"]),
        (8, "smoke", "ok", ["smoke"]),
    ]
    checks = {c.id: c for s in receipt.steps for c in s.checks}
    assert (checks["keyring_signature"].status, checks["keyring_signature"].message) == (
        "warn",
        "backup keyring is unsigned (no keyring.chain.json)",
    )
    assert (checks["keyring_floor"].status, checks["keyring_floor"].message) == ("ok", "rollback floor v3")
    assert checks["registry_high_water"].message.startswith("entry ids continue after proof_")
    assert checks["generation"].message.startswith("generation ")
    assert checks["swap"].message == "live replaced; previous state kept at " + next(
        p.name for p in live.parent.iterdir() if p.name.startswith("var.old")
    )
    assert checks["smoke"].message == "registry opens, keyring loads"
    assert receipt.restored_at == "2026-05-01T12:00:00Z" and receipt.backup_id == "b1"
    assert receipt.manifest_sha3_256.startswith("0x") and len(receipt.manifest_sha3_256) == 66


def test_receipt_time_is_utc_whatever_zone_the_clock_gives():
    ctx = RestoreContext(backup_id="b1", live_dir="/x")
    east = datetime(2026, 5, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    receipt = build_receipt(ctx, [], Recovery.NOTHING, east)
    assert receipt.restored_at == "2026-05-01T12:00:00Z"
    assert receipt.manifest_sha3_256 == ""


def test_keyring_merge_names_what_it_kept(store, live):
    receipt = run_restore(store, "b1", live, SIGNER, now=NOW, options=RestoreOptions(keyring_merge=True))
    checks = {c.id: c for s in receipt.steps for c in s.checks}
    assert checks["keyring_kept"].message == f"keyring.json, keys/{SIGNER.kid}.json"


def test_keyring_merge_with_nothing_to_keep_says_so(store, live):
    (live / "keyring.json").unlink()
    shutil.rmtree(live / "keys")
    ctx = staged(
        store, live, (TrustedKey(kid=SIGNER.kid, public_key=SIGNER.public_key_b64),), keyring_merge=True
    )
    swap_in(ctx)
    checks = {c.id: c for c in ctx.checks}
    assert checks["keyring_kept"].message == "nothing"


def test_staging_that_differs_from_the_manifest_names_missing_and_extra_files(store, live):
    ctx = staged(store, live)
    (ctx.staging_dir / "config.yaml").unlink()
    (ctx.staging_dir / "planted.txt").write_text("x")
    with pytest.raises(IntegrityError) as exc:
        swap_in(ctx)
    assert exc.value.message == "staging does not match the manifest"
    assert exc.value.details["missing"] == ["config.yaml"]
    assert exc.value.details["extra"] == ["planted.txt"]
    assert (live / "config.yaml").exists()  # live untouched


def test_generation_time_comes_from_the_manifest_when_no_start_time_is_given(store, live):
    ctx = staged(store, live)
    ctx.started_at = None
    swap_in(ctx)
    record = json.loads((live / "generation.json").read_text())
    assert record["reason"] == "restore b1"
    assert record["at"] == "2026-05-01T12:00:00Z"


def test_a_manifest_time_that_is_no_date_names_the_field(store, live):
    ctx = staged(store, live)
    ctx.started_at = None
    ctx.manifest = ctx.manifest.model_copy(update={"created_at": "2026-13-45T99:99:99Z"})
    with pytest.raises(InvalidInputError) as exc:
        swap_in(ctx)
    assert exc.value.details["field"] == "created_at"


def test_smoke_refuses_a_registry_that_is_not_a_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a wrong sqlite URI would create a stray file here, not fail
    live = tmp_path / "var"
    live.mkdir()
    (live / "registry.sqlite").write_bytes(b"not a database at all, " * 50)
    with pytest.raises(IntegrityError) as exc:
        default_smoke(live)
    assert exc.value.message.startswith("registry does not open: ")
    assert exc.value.details["file"] == "registry.sqlite"


def _attestation(tmp_path, name=None, tamper=False):
    meta = build_metadata(SUBJECT.public_key_b64, "ACME", NOW)
    signed = attest(SIGNER, "ACME", meta, NOW).model_dump(mode="json", by_alias=True)
    if tamper:
        signed["attestation"]["subject_owner"] = "Mallory"
    rel = f"keys/{name or SUBJECT.kid}.attestation.json"
    path = tmp_path / "att.json"
    path.write_text(json.dumps(signed))
    return path, rel


def test_a_valid_attestation_passes(tmp_path):
    path, rel = _attestation(tmp_path)
    _check_attestation_file(path, rel)


def test_an_attestation_under_another_name_is_refused_naming_the_file(tmp_path):
    path, rel = _attestation(tmp_path, name=SIGNER.kid)
    with pytest.raises(IntegrityError) as exc:
        _check_attestation_file(path, rel)
    assert exc.value.message == "attestation file is not named after its subject key"
    assert exc.value.details["file"] == rel
    assert exc.value.details["expected"] == SUBJECT.kid


def test_an_attestation_that_does_not_verify_is_refused_naming_the_file(tmp_path):
    path, rel = _attestation(tmp_path, tamper=True)
    with pytest.raises(IntegrityError) as exc:
        _check_attestation_file(path, rel)
    assert exc.value.message == "restored attestation does not verify: signature does not verify"
    assert exc.value.details["file"] == rel


def test_an_attestation_that_is_not_one_says_what_was_expected(tmp_path):
    path = tmp_path / "att.json"
    path.write_text('{"attestation": {}}')
    with pytest.raises(InvalidInputError) as exc:
        _check_attestation_file(path, "keys/x.attestation.json")
    assert exc.value.message.startswith("invalid attestation: ")
    assert exc.value.details["file"] == "keys/x.attestation.json"


def test_an_unsigned_keyring_with_an_operator_key_pinned_is_refused_naming_it(tmp_path):
    ring = tmp_path / "keyring.json"
    meta = build_metadata(SIGNER.public_key_b64, "ACME", NOW)
    ring.write_bytes(keyring_file_bytes(bootstrap_keyring(meta, NOW, "ops")))
    ctx = RestoreContext(backup_id="b1", live_dir=tmp_path / "var", operator_keys=(SUBJECT.public_key_b64,))
    with pytest.raises(IntegrityError) as exc:
        _check_keyring_chain(ctx, ring)
    assert exc.value.code == "keyring_unsigned"
    assert exc.value.details["file"] == "keyring.json"


def test_a_staged_keyring_that_does_not_parse_is_refused_naming_it(store, live):
    ctx = staged(store, live)
    (ctx.staging_dir / "keyring.json").write_text('{"schema": "cap-keyring.v1"')
    with pytest.raises(InvalidInputError) as exc:
        check_key_metadata(ctx)
    assert exc.value.details["file"] == "keyring.json"


def test_the_live_dirs_permissions_carry_over_to_the_restored_dir(store, live):
    live.chmod(0o710)
    run_restore(store, "b1", live, SIGNER, now=NOW)
    assert live.stat().st_mode & 0o7777 == 0o710


def test_what_was_carried_over_from_live_is_named(store, live):
    receipt = run_restore(store, "b1", live, SIGNER, now=NOW)
    checks = {c.id: c for s in receipt.steps for c in s.checks}
    carried = checks["carried_over"].message.split(", ")
    assert f"keys/{SIGNER.kid}.pem" in carried  # the private key stays on the machine, never in a backup


def test_a_failed_smoke_check_says_the_previous_state_is_back(store, live):
    def smoke(path):
        raise IntegrityError("registry does not answer")

    with pytest.raises(VerificationError) as exc:
        run_restore(store, "b1", live, SIGNER, now=NOW, options=RestoreOptions(smoke=smoke))
    assert exc.value.code == "restore_smoke_failed"
    assert exc.value.message == "smoke check failed, previous state restored: registry does not answer"
    assert [c["id"] for c in exc.value.details["restore_checks"]][:2] == [
        "manifest_signature",
        "archive_fetched",
    ]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("allow_key_rollback", "backup keyring v3 is older than live v5: taking the backup's keyring"),
        ("keyring_merge", "backup keyring v3 is older than live v5: keeping the live keyring v5"),
    ],
)
def test_an_older_keyring_records_the_operators_choice(store, live, option, message):
    write_keyring(live, 5)
    ctx = staged(store, live, **{option: True})
    check_key_metadata(ctx)
    checks = {c.id: c for c in ctx.checks}
    assert checks["keyring_decision"].status == "warn"
    assert checks["keyring_decision"].message.startswith(message)


def test_a_keyring_of_another_version_than_the_manifest_says_is_refused_naming_it(store, live):
    ctx = staged(store, live)
    write_keyring(ctx.staging_dir, 4)
    with pytest.raises(IntegrityError) as exc:
        check_key_metadata(ctx)
    assert exc.value.message == "keyring version differs from manifest"
    assert exc.value.details["file"] == "keyring.json"


def test_key_metadata_that_is_a_hex_seed_is_refused(tmp_path):
    ctx = RestoreContext(backup_id="b1", live_dir=tmp_path / "var")
    rel = f"keys/{SIGNER.kid}.json"
    (ctx.staging_dir / "keys").mkdir(parents=True)
    (ctx.staging_dir / rel).write_text("9d" * 32)  # 64 hex characters: a private seed
    with pytest.raises(IntegrityError) as exc:
        _check_key_file(ctx, rel)
    assert exc.value.message == "restored key metadata holds sensitive material"
    assert exc.value.details["file"] == rel


def test_a_backup_without_databases_says_so_per_kind(tmp_path):
    live = make_state(tmp_path / "src", rows=1)
    (live / "registry.sqlite").unlink()
    (live / "policies.sqlite").unlink()
    store, _ = backup(live, tmp_path / "store", backup_id="b2")
    ctx = RestoreContext(backup_id="b2", live_dir=live, started_at=NOW)
    fetch_backup(ctx, store)
    verify_integrity(ctx)
    prepare_staging(ctx)
    check_registry(ctx)
    check_policy_store(ctx)
    checks = {c.id: (c.status, c.message) for c in ctx.checks}
    assert checks["sqlite:database"] == ("warn", "not in this backup")
    assert checks["sqlite:policy_store"] == ("warn", "not in this backup")


def _index_corrupted(path, table, columns, user_version):
    """Rewrite ``path`` as a database that opens and passes quick_check but whose index disagrees with its
    table (integrity_check reports it)."""
    path.unlink()
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE {table}({columns})")
    conn.execute(f"CREATE INDEX by_body ON {table}(body)")
    conn.execute(f"INSERT INTO {table}(body) VALUES ('zzzzzzzzzzzzzzzz')")
    conn.execute(f"PRAGMA user_version={user_version}")
    conn.commit()
    conn.close()
    raw = bytearray(path.read_bytes())
    raw[raw.index(b"zzzzzzzzzzzzzzzz")] = ord("y")  # the table's copy (page 2), not the index's
    path.write_bytes(bytes(raw))


def test_quick_check_is_honoured_for_the_policy_store_and_a_full_check_names_what_failed(store, live):
    ctx = staged(store, live)
    entry = next(f for f in ctx.manifest.files if f.path == "policies.sqlite")
    _index_corrupted(
        ctx.staging_dir / "policies.sqlite",
        "policies",
        "hash TEXT, body TEXT, status TEXT",
        entry.sqlite.user_version,
    )
    check_policy_store(ctx, quick=True)  # quick_check does not read the index against the table
    with pytest.raises(IntegrityError) as exc:
        check_policy_store(ctx)
    assert exc.value.message == "PRAGMA integrity_check failed"
    assert exc.value.details["file"] == "policies.sqlite"
    assert "by_body" in exc.value.details["found"]  # sqlite's own words, naming the broken index


def test_a_database_missing_a_table_or_of_another_schema_version_is_refused_in_words(store, live):
    ctx = staged(store, live)
    with pytest.raises(IntegrityError) as exc:
        check_registry(ctx, expected_tables=("registry_entries", "audit"))
    assert exc.value.message == "restored database lacks tables"
    conn = sqlite3.connect(ctx.staging_dir / "registry.sqlite")
    conn.execute("PRAGMA user_version=9")
    conn.close()
    with pytest.raises(IntegrityError) as exc2:
        check_registry(ctx)
    assert exc2.value.message == "schema version differs from manifest"
    assert exc2.value.details["file"] == "registry.sqlite"


def test_a_keyring_whose_chain_verifies_is_recorded_as_signed(tmp_path):
    ring = tmp_path / "keyring.json"
    keyring = bootstrap_keyring(build_metadata(SIGNER.public_key_b64, "ACME", NOW), NOW, "ops")
    data = keyring_file_bytes(keyring)
    ring.write_bytes(data)
    append_link(ring, keyring, data, SUBJECT, LinkSigner.OPERATOR)
    ctx = RestoreContext(backup_id="b1", live_dir=tmp_path / "var", operator_keys=(SUBJECT.public_key_b64,))
    _check_keyring_chain(ctx, ring)
    assert [(c.id, c.status, c.message) for c in ctx.checks] == [
        ("keyring_signature", "ok", "keyring v1 signed, chain verified")
    ]
    ctx.operator_keys = (OTHER_OPERATOR.public_key_b64,)  # pinned to someone else: the chain does not count
    with pytest.raises(IntegrityError) as exc:
        _check_keyring_chain(ctx, ring)
    assert exc.value.code == "keyring_signature_invalid"
    assert exc.value.details["file"] == "keyring.json"


def test_an_archive_with_bytes_appended_at_a_chunk_boundary_is_refused(tmp_path):
    body = bytes(range(256)) * (READ_CHUNK // 256)  # exactly one read chunk
    path = tmp_path / "a.tar.gz"
    path.write_bytes(body + b"appended")
    info = ArchiveInfo(name="a.tar.gz", sha3_256=sha3_hex(body), size_bytes=len(body))
    with pytest.raises(IntegrityError) as exc:
        check_archive_digest(path, info)
    assert exc.value.code == "backup_digest_mismatch"
    path.write_bytes(body)
    check_archive_digest(path, info)


def test_a_manifest_under_another_backup_id_is_refused_naming_the_field(store, live, tmp_path):
    copy = tmp_path / "store"
    shutil.copytree(store.root, copy)
    shutil.copy(copy / f"b1{MANIFEST_SUFFIX}", copy / f"b9{MANIFEST_SUFFIX}")
    ctx = RestoreContext(backup_id="b9", live_dir=live)
    with pytest.raises(IntegrityError) as exc:
        fetch_backup(ctx, FileStore(copy))
    assert exc.value.message == "manifest is for another backup id"
    assert (exc.value.details["field"], exc.value.details["expected"]) == ("backup_id", "b9")
    (copy / f"b9{MANIFEST_SUFFIX}").write_text("{")
    with pytest.raises(IntegrityError) as exc2:
        fetch_backup(ctx, FileStore(copy))
    assert exc2.value.details["file"] == f"b9{MANIFEST_SUFFIX}"


def test_fetch_reuses_the_work_dir_a_crashed_restore_left(store, live):
    ctx = RestoreContext(backup_id="b1", live_dir=live)
    ctx.work_dir.mkdir()
    fetch_backup(ctx, store)
    assert [c.id for c in ctx.checks] == ["manifest_signature", "archive_fetched"]


def test_integrity_before_fetch_is_a_config_error_naming_the_field(store, live):
    ctx = RestoreContext(backup_id="b1", live_dir=live)
    fetch_backup(ctx, store)
    ctx.archive_path = None
    with pytest.raises(ConfigError) as exc:
        verify_integrity(ctx)
    assert (exc.value.message, exc.value.details["field"]) == (
        "restore step run before fetch",
        "archive_path",
    )


def test_pinned_operator_keys_reach_the_keyring_check(store, live):
    opts = RestoreOptions(verify_only=True, operator_keys=(SUBJECT.public_key_b64,))
    with pytest.raises((IntegrityError, InvalidInputError)) as exc:  # not a signed, full keyring
        run_restore(store, "b1", live, SIGNER, now=NOW, options=opts)
    assert exc.value.details["file"] == "keyring.json"
    run_restore(store, "b1", live, SIGNER, now=NOW, options=RestoreOptions(verify_only=True))


def test_step_durations_come_from_the_clock_and_skipped_steps_take_none(store, live):
    ticks = iter(i * 0.25 for i in range(100))
    opts = RestoreOptions(verify_only=True, clock=lambda: next(ticks))
    receipt = run_restore(store, "b1", live, SIGNER, now=NOW, options=opts)
    assert [s.duration_ms for s in receipt.steps] == [250] * 6 + [0, 0]
    assert [s.status for s in receipt.steps[6:]] == ["skipped", "skipped"]


def test_an_unreadable_live_keyring_without_trusted_keys_names_its_path(store, live):
    (live / "keyring.json").write_text("{")
    ctx = RestoreContext(backup_id="b1", live_dir=live)
    with pytest.raises(ConfigError) as exc:
        fetch_backup(ctx, store)
    assert exc.value.details["file"] == str(live / "keyring.json")


def test_a_database_entry_without_a_sqlite_record_is_still_checked(store, live):
    """The manifest's sqlite record (tables, schema version) is optional; without it the database is still
    integrity-checked against the caller's expected tables."""
    ctx = staged(store, live)
    files = tuple(
        f.model_copy(update={"sqlite": None}) if f.path == "registry.sqlite" else f
        for f in ctx.manifest.files
    )
    ctx.manifest = ctx.manifest.model_copy(update={"files": files})
    check_registry(ctx, expected_tables=("registry_entries",))
    assert [c.id for c in ctx.checks][-1] == "sqlite:registry.sqlite"
    with pytest.raises(IntegrityError) as exc:
        check_registry(ctx, expected_tables=("audit",))
    assert exc.value.details["expected"] == ["audit"]
