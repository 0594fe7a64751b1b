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
from datetime import datetime, timedelta, timezone

import pytest

from core.attestation import attest
from core.backup.manifest import TrustedKey
from core.backup.restore import (
    RestoreContext,
    RestoreOptions,
    _check_attestation_file,
    build_receipt,
    check_key_metadata,
    default_smoke,
    fetch_backup,
    prepare_staging,
    run_restore,
    swap_in,
    verify_integrity,
)
from core.backup.swap import Recovery
from core.errors import CapError, IntegrityError, InvalidInputError
from core.keys import build_metadata
from core.signing import Ed25519Signer
from tests.unit.test_backup_helpers import NOW, SIGNER, backup, make_state

SUBJECT = Ed25519Signer.from_seed(b"\x09" * 32)


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


def test_an_unsigned_keyring_with_an_operator_key_pinned_is_refused_naming_it(store, live):
    ctx = staged(store, live, operator_keys=(SUBJECT.public_key_b64,))
    with pytest.raises(CapError) as exc:
        check_key_metadata(ctx)
    assert exc.value.details["file"] == "keyring.json"


def test_a_staged_keyring_that_does_not_parse_is_refused_naming_it(store, live):
    ctx = staged(store, live)
    (ctx.staging_dir / "keyring.json").write_text('{"schema": "cap-keyring.v1"')
    with pytest.raises(InvalidInputError) as exc:
        check_key_metadata(ctx)
    assert exc.value.details["file"] == "keyring.json"
