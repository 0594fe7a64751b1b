"""Restore's remaining record-keeping and refusals, found by the full mutation run of core/backup/restore.py.

Each test pins what an operator reads (an error's words and the file it names, a receipt field, a check's
message) or a property of the restored state (staging permissions, the old directory's name, the generation
time), on the one small backup of ``test_mutation_backup_restore_2`` (``make mutation
MODULE=core/backup/restore.py``).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import timedelta

import pytest

from core.backup.archive import READ_CHUNK
from core.backup.manifest import ArchiveInfo
from core.backup.restore import (
    KEYRING_OPTIONS,
    RECEIPT_VERSION,
    ReplicaPoint,
    RestoreContext,
    RestoreOptions,
    _completeness,
    _keyring_decision,
    _live_keyring,
    build_receipt,
    check_archive_digest,
    check_policy_store,
    fetch_backup,
    prepare_staging,
    run_restore,
    sign_receipt,
    swap_in,
    verify_integrity,
)
from core.backup.swap import Recovery
from core.digest import sha3_hex
from core.errors import ConfigError, IntegrityError, InvalidInputError, VerificationError
from core.generation import writing_state
from core.signing import verify_signature
from tests.unit import test_mutation_backup_restore_2 as shared
from tests.unit.test_backup_helpers import NOW, SIGNER

# the one small backup built per module, and its live dir copied per test
built, live, store, staged = shared.built, shared.live, shared.store, shared.staged

DIGEST_MESSAGE = (
    "archive digest or size differs from the signed manifest; nothing was decrypted or decompressed"
)


def test_an_archive_over_several_read_chunks_is_hashed_whole_and_a_changed_byte_names_the_archive(tmp_path):
    body = bytes(range(256)) * (READ_CHUNK // 256) * 2 + b"tail"
    path = tmp_path / "a.tar.gz"
    path.write_bytes(body)
    info = ArchiveInfo(name="b1.tar.gz", sha3_256=sha3_hex(body), size_bytes=len(body))
    check_archive_digest(path, info)
    path.write_bytes(body[:-1] + b"X")
    with pytest.raises(IntegrityError) as exc:
        check_archive_digest(path, info)
    assert (exc.value.message, exc.value.code, exc.value.details["file"]) == (
        DIGEST_MESSAGE,
        "backup_digest_mismatch",
        "b1.tar.gz",
    )


def test_completeness_lists_at_most_ten_missing_and_ten_extra_files(store, live):
    ctx = staged(store, live)
    phantom = ctx.manifest.files[0]
    files = ctx.manifest.files + tuple(
        phantom.model_copy(update={"path": f"gone/{i:02d}"}) for i in range(12)
    )
    ctx.manifest = ctx.manifest.model_copy(update={"files": files})
    for i in range(12):
        (ctx.staging_dir / f"planted-{i:02d}.txt").write_text("x")
    with pytest.raises(IntegrityError) as exc:
        _completeness(ctx)
    assert exc.value.details["missing"] == [f"gone/{i:02d}" for i in range(10)]
    assert exc.value.details["extra"] == [f"planted-{i:02d}.txt" for i in range(10)]


def test_a_replica_restore_checks_staging_against_what_it_staged(store, live):
    """No manifest (a point-in-time restore): staging must hold exactly the files step 3 staged."""
    ctx = staged(store, live)
    names = sorted(
        p.relative_to(ctx.staging_dir).as_posix() for p in ctx.staging_dir.rglob("*") if p.is_file()
    )
    ctx.manifest, ctx.staged_files = None, names
    _completeness(ctx)
    ctx.staged_files = names[1:]
    with pytest.raises(IntegrityError) as exc:
        _completeness(ctx)
    assert exc.value.details["extra"] == names[:1]


def test_an_older_backup_keyring_is_refused_naming_both_versions_and_the_options(tmp_path):
    ctx = RestoreContext(backup_id="b1", live_dir=tmp_path)
    with pytest.raises(VerificationError) as exc:
        _keyring_decision(ctx, 1, 3)
    assert exc.value.message == f"backup keyring v1 is older than live v3; {KEYRING_OPTIONS}"
    assert (exc.value.code, exc.value.details["expected"]) == ("keyring_rollback", ">= 3")


def test_an_unreadable_live_keyring_is_named_in_words(tmp_path):
    (tmp_path / "keyring.json").write_text("{")
    ctx = RestoreContext(backup_id="b1", live_dir=tmp_path)
    with pytest.raises(ConfigError) as exc:
        _live_keyring(ctx, None)
    assert exc.value.message == "no readable live keyring to check the backup signature; pass trusted_keys"
    assert _live_keyring(ctx, ()) == ()
    (check,) = ctx.checks
    assert (check.id, check.status, check.message) == (
        "live_keyring",
        "warn",
        "live keyring unreadable; rollback check uses trusted keys only",
    )


def test_the_receipt_names_the_live_dir_and_the_replica_point_in_utc_whatever_the_local_zone(monkeypatch):
    point = ReplicaPoint(url="file:///r", requested="2026-05-01T11:00:00Z", reached="2026-05-01T10:59:58Z")
    ctx = RestoreContext(backup_id="b1", live_dir="/srv/cap", replica=point)
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        receipt = build_receipt(ctx, [], Recovery.NOTHING, NOW)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert (receipt.live_dir, receipt.replica, receipt.restored_at) == (
        "/srv/cap",
        point,
        "2026-05-01T12:00:00Z",
    )


def test_the_receipt_signature_is_over_its_documented_bytes():
    """``"restore.receipt.v1\\n" + canonical JSON without the signature`` (docs/formats/backup.md): a
    verifier can check it without this code."""
    receipt = sign_receipt(
        build_receipt(RestoreContext(backup_id="b1", live_dir="/x"), [], Recovery.NOTHING, NOW), SIGNER
    )
    unsigned = receipt.model_dump(mode="json", exclude_none=True)  # absent fields are left out
    del unsigned["signature"]
    # compact JSON in the documented field order (a typed document: ADR 0001)
    expected = RECEIPT_VERSION.encode() + b"\n" + json.dumps(unsigned, separators=(",", ":")).encode()
    raw = base64.b64decode(receipt.signature.sig)
    assert verify_signature(SIGNER.public_key_b64, raw, expected)


def test_policy_hash_problems_are_refused_naming_the_file_and_at_most_twenty(store, live):
    ctx = staged(store, live)
    with pytest.raises(IntegrityError) as exc:
        check_policy_store(ctx, rehash=lambda path: [f"policy {i} hash differs" for i in range(25)])
    assert (exc.value.message, exc.value.details["file"]) == ("policy or IR hash mismatch", "policies.sqlite")
    assert len(exc.value.details["problems"]) == 20
    ctx = staged(store, live)
    check_policy_store(ctx)
    check = next(c for c in ctx.checks if c.id == "policy_hashes")
    assert (check.status, check.message) == ("warn", "no rehash function given")
    ctx = staged(store, live)
    check_policy_store(ctx, rehash=lambda path: [])
    check = next(c for c in ctx.checks if c.id == "policy_hashes")
    assert (check.status, check.message) == ("ok", "recomputed")


def test_staging_for_a_first_restore_is_private_to_the_owner_and_group(store, tmp_path):
    """No live dir yet: staging is created 0750 and its path is recorded."""
    ctx = RestoreContext(backup_id="b1", live_dir=tmp_path / "fresh")
    from core.backup.manifest import TrustedKey

    fetch_backup(ctx, store, (TrustedKey(kid=SIGNER.kid, public_key=SIGNER.public_key_b64),))
    verify_integrity(ctx)
    prepare_staging(ctx)
    assert ctx.staging_dir.stat().st_mode & 0o7777 == 0o750
    assert ctx.checks[-1].message == str(ctx.staging_dir)


def test_the_generation_is_dated_by_the_restore_and_the_old_dir_named_by_the_backup(store, live):
    later = NOW + timedelta(hours=3)
    run_restore(store, "b1", live, SIGNER, now=later)
    assert json.loads((live / "generation.json").read_text())["at"] == "2026-05-01T15:00:00Z"
    assert [p.name for p in live.parent.iterdir() if ".old" in p.name] == ["var.old-b1"]


def test_custom_smoke_checks_are_named_and_keep_old_false_removes_the_previous_state(store, live):
    opts = RestoreOptions(smoke=lambda path: None, keep_old=False)
    receipt = run_restore(store, "b1", live, SIGNER, now=NOW, options=opts)
    checks = {c.id: c for s in receipt.steps for c in s.checks}
    assert checks["smoke"].message == "custom smoke checks passed"
    assert not [p for p in live.parent.iterdir() if ".old" in p.name]


def test_a_step_before_fetch_says_so(tmp_path):
    with pytest.raises(ConfigError) as exc:
        RestoreContext(backup_id="b1", live_dir=tmp_path).need_manifest()
    assert (exc.value.message, exc.value.details["field"]) == ("restore step run before fetch", "manifest")


def test_step_durations_are_milliseconds_of_the_clock(store, live):
    ticks = iter(float(i) for i in range(100))
    opts = RestoreOptions(verify_only=True, clock=lambda: next(ticks))
    receipt = run_restore(store, "b1", live, SIGNER, now=NOW, options=opts)
    assert [s.duration_ms for s in receipt.steps[:6]] == [1000] * 6


def test_a_verify_only_restore_does_not_wait_for_writers(store, live):
    """Verifying a backup changes nothing, so a writer holding the state lock does not stop it."""
    holding, release = threading.Event(), threading.Event()

    def writer():
        with writing_state(live):
            holding.set()
            release.wait(60)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        opts = RestoreOptions(verify_only=True)
        receipt = run_restore(store, "b1", live, SIGNER, now=NOW, options=opts)
        assert receipt.verify_only
    finally:
        release.set()
        thread.join()


def test_swap_in_without_a_live_dir_carries_nothing_over(store, tmp_path):
    from core.backup.manifest import TrustedKey

    ctx = RestoreContext(backup_id="b1", live_dir=tmp_path / "fresh", started_at=NOW)
    fetch_backup(ctx, store, (TrustedKey(kid=SIGNER.kid, public_key=SIGNER.public_key_b64),))
    verify_integrity(ctx)
    prepare_staging(ctx)
    swap_in(ctx)
    checks = {c.id: c.message for c in ctx.checks}
    assert checks["carried_over"] == "nothing"


def _floor_check(ctx):
    return next((c.status, c.message) for c in ctx.checks if c.id == "keyring_floor")


def test_the_rollback_floor_is_the_highest_version_either_side_has_seen(store, live):
    from tests.unit.test_backup_helpers import write_keyring

    write_keyring(live, 5)  # the live keyring moved on since the backup (v3)
    ctx = staged(store, live)
    swap_in(ctx)
    assert _floor_check(ctx) == ("ok", "rollback floor v5")


def test_a_floor_the_live_dir_recorded_is_kept(store, live):
    from core.keyring import FLOOR_FILE, write_floor

    write_floor(live / FLOOR_FILE, 7)
    ctx = staged(store, live)
    swap_in(ctx)
    assert _floor_check(ctx) == ("ok", "rollback floor v7")


def test_an_explicit_rollback_lowers_the_floor_with_a_warning(store, live):
    from tests.unit.test_backup_helpers import write_keyring

    write_keyring(live, 5)
    ctx = staged(store, live, allow_key_rollback=True)
    swap_in(ctx)
    assert _floor_check(ctx) == ("warn", "rollback floor v3")


def test_keyring_merge_replaces_the_backups_key_metadata_with_the_live_set(store, live):
    """A key whose metadata the live dir no longer has (removed since the backup) does not come back."""
    from core.signing import Ed25519Signer

    other = Ed25519Signer.from_seed(b"\x0b" * 32)
    (live / "keys" / f"{SIGNER.kid}.json").rename(live / "keys" / f"{other.kid}.json")
    ctx = staged(store, live, keyring_merge=True)
    assert (ctx.staging_dir / "keys" / f"{SIGNER.kid}.json").exists()  # the backup's
    swap_in(ctx)
    assert sorted(p.name for p in (live / "keys").glob("*.json")) == [f"{other.kid}.json"]
    kept = next(c.message for c in ctx.checks if c.id == "keyring_kept")
    assert kept == f"keyring.json, keys/{other.kid}.json"


def test_a_staged_attestation_is_checked_where_it_lies(store, live, tmp_path):
    from tests.unit.test_mutation_backup_restore_2 import _attestation

    path, rel = _attestation(tmp_path)
    ctx = RestoreContext(backup_id="b1", live_dir=tmp_path / "var")
    (ctx.staging_dir / "keys").mkdir(parents=True)
    (ctx.staging_dir / rel).write_bytes(path.read_bytes())
    from core.backup.restore import _check_key_file

    _check_key_file(ctx, rel)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{}", "key metadata unreadable"),
        (
            json.dumps({"kid": "0" * 32, "public_key": SIGNER.public_key_b64}),
            "key metadata kid does not match its public key",
        ),
    ],
)
def test_bad_key_metadata_is_refused_in_words_naming_the_file(tmp_path, body, message):
    from core.backup.restore import _check_key_file

    ctx = RestoreContext(backup_id="b1", live_dir=tmp_path / "var")
    rel = f"keys/{SIGNER.kid}.json"
    (ctx.staging_dir / "keys").mkdir(parents=True)
    (ctx.staging_dir / rel).write_text(body)
    with pytest.raises(IntegrityError) as exc:
        _check_key_file(ctx, rel)
    assert (exc.value.message, exc.value.details["file"]) == (message, rel)


def test_the_quick_check_option_reaches_the_policy_store_check(store, live, monkeypatch):
    from core.backup import restore as module

    seen = []
    real = module.check_policy_store
    monkeypatch.setattr(
        module,
        "check_policy_store",
        lambda ctx, rehash, tables, quick: seen.append(quick) or real(ctx, rehash, tables, quick),
    )
    run_restore(
        store, "b1", live, SIGNER, now=NOW, options=RestoreOptions(verify_only=True, quick_check=True)
    )
    assert seen == [True]


def test_the_registry_check_is_a_full_integrity_check_unless_asked_otherwise(store, live):
    from core.backup.restore import check_registry
    from tests.unit.test_mutation_backup_restore_2 import _index_corrupted

    ctx = staged(store, live)
    entry = next(f for f in ctx.manifest.files if f.path == "registry.sqlite")
    _index_corrupted(
        ctx.staging_dir / "registry.sqlite",
        "registry_entries",
        "id INTEGER PRIMARY KEY, body TEXT",
        entry.sqlite.user_version,
    )
    check_registry(ctx, quick=True)
    with pytest.raises(IntegrityError) as exc:
        check_registry(ctx)
    assert exc.value.message == "PRAGMA integrity_check failed"


def test_the_default_smoke_check_loads_the_keyring(tmp_path):
    from core.backup.restore import default_smoke

    (tmp_path / "keyring.json").write_text("{")
    with pytest.raises((IntegrityError, InvalidInputError)):
        default_smoke(tmp_path)


def test_a_step_that_returns_a_new_context_hands_it_to_the_next_steps(tmp_path):
    """A Prefect task returns the context it changed (it ran in another process); the saga carries it on."""
    from core.backup.restore import RestoreSaga, StepName

    first = RestoreContext(backup_id="b1", live_dir=tmp_path)
    second = RestoreContext(backup_id="b1", live_dir=tmp_path)
    saga = RestoreSaga(first)
    saga.run(StepName.FETCH, lambda ctx: second)
    seen = []
    saga.run(StepName.VERIFY, lambda ctx: seen.append(ctx))
    assert saga.ctx is second and seen == [second]


def test_smoke_check_keeps_the_previous_state_by_default(store, live):
    from core.backup.restore import smoke_check

    ctx = staged(store, live)
    swap_in(ctx)
    smoke_check(ctx)
    assert [p.name for p in live.parent.iterdir() if ".old" in p.name] == ["var.old-b1"]


@pytest.mark.parametrize("encrypt", [False, True], ids=["plain", "encrypted"])
def test_an_archive_inflating_past_what_the_manifest_declares_stops_encrypted_or_not(tmp_path, encrypt):
    """The decompression bound holds on both readers: a manifest declaring less than the archive holds
    stops the gunzip loop (``backup_too_large``), whether or not the archive is encrypted."""
    from core.backup.restore import _archive_pieces
    from tests.unit.test_backup_helpers import MASTER, backup, make_state

    state = make_state(tmp_path / "var", rows=4000)
    _, result = backup(state, tmp_path / "store", encrypt=encrypt, key_wrapper=MASTER)
    path = tmp_path / "store" / result.manifest.archive.name
    small = tuple(f.model_copy(update={"size_bytes": 1}) for f in result.manifest.files)
    manifest = result.manifest.model_copy(update={"files": small})
    with pytest.raises(IntegrityError) as exc:
        for _ in _archive_pieces(path, manifest, MASTER if encrypt else None):
            pass
    assert exc.value.code == "backup_too_large"
    assert sum(len(p) for p in _archive_pieces(path, result.manifest, MASTER if encrypt else None)) > 0
