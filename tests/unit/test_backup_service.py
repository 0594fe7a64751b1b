"""The backup/restore service functions: metrics, default store, policy rehash, smoke, the saga driver."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core import service
from core.backup import service as backups
from core.backup.report import backup_markdown, restore_markdown
from core.backup.restore import RestoreContext, RestoreSaga, StepName
from core.backup.retention import KeepRules
from core.errors import IntegrityError, NotFoundError, VerificationError
from core.metrics import REGISTRY
from core.settings import Settings
from core.status import observe_status
from tests.unit.test_backup_helpers import NOW, tree_digest

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "examples" / "policy.lksg.v1.yml"


def real_state(root: Path) -> Settings:
    """A data dir made by the real service functions: key + keyring, policy store, config, audit log."""
    settings = Settings(data_dir=root)
    service.keygen(settings, now=NOW, owner="Test GmbH")
    service.store_policy(settings, service.load_policy(POLICY), NOW)
    (root / "config.yaml").write_text("subject: LEI-TEST-0001\n")
    (root / "audit.jsonl").write_text('{"seq":1,"event":"policy_compiled","digest":"0x00"}\n')
    return settings


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_backup_now_uses_the_default_store_and_emits_metrics(tmp_path):
    settings = real_state(tmp_path / "var")
    ok, count = _sample("cap_backup_total", result="success"), _sample("cap_backup_duration_seconds_count")
    result = backups.backup_now(settings, now=NOW)
    assert result.store_uri == (tmp_path / "var" / "backups").resolve().as_uri()
    assert _sample("cap_backup_total", result="success") == ok + 1
    assert _sample("cap_backup_duration_seconds_count") == count + 1
    state = observe_status(settings.layout, None, NOW)  # what /metrics reports, from the status book
    assert state.backup_size_bytes == result.manifest.archive.size_bytes
    assert state.backup_last_success == NOW.timestamp()
    assert [b.backup_id for b in backups.list_backups(settings)] == [result.manifest.backup_id]
    report = backup_markdown(result)
    assert all(f.sha3_256 in report and f.path in report for f in result.manifest.files)


def test_backup_failure_is_counted(tmp_path):
    settings = Settings(data_dir=tmp_path / "empty")
    failed = _sample("cap_backup_total", result="failure")
    with pytest.raises(NotFoundError):
        backups.backup_now(settings, now=NOW)  # no keyring, so no signer
    assert _sample("cap_backup_total", result="failure") == failed + 1


def test_restore_now_verifies_restores_and_counts(tmp_path):
    settings = real_state(tmp_path / "var")
    bid = backups.backup_now(settings, now=NOW).manifest.backup_id
    before = tree_digest(settings.data_dir)
    ok = _sample("cap_restore_total", result="success")
    failed = _sample("cap_restore_total", result="failure")
    receipt = backups.restore_now(settings, bid, now=NOW, verify_only=True)
    assert tree_digest(settings.data_dir) == before
    policy_step = next(s for s in receipt.steps if s.name is StepName.POLICY)
    assert {c.id: c.status for c in policy_step.checks}["policy_hashes"] == "ok"
    (settings.data_dir / "config.yaml").write_text("subject: changed\n")
    receipt = backups.restore_now(settings, bid, now=NOW)
    assert (settings.data_dir / "config.yaml").read_text() == "subject: LEI-TEST-0001\n"
    assert [s.status for s in receipt.steps] == ["ok"] * 8
    assert "| 7 | swap | ok |" in restore_markdown(receipt)
    with pytest.raises(NotFoundError):
        backups.restore_now(settings, "backup-missing", now=NOW)
    assert _sample("cap_restore_total", result="success") == ok + 2
    assert _sample("cap_restore_total", result="failure") == failed + 1


def test_policy_hash_tampering_is_found_in_step_5(tmp_path):
    settings = real_state(tmp_path / "var")
    conn = sqlite3.connect(settings.layout.policy_db)
    conn.execute("UPDATE policies SET policy_json = replace(policy_json, 'lksg', 'LKSG')")
    conn.commit()
    conn.close()
    assert backups.rehash_policy_store(settings.layout.policy_db)
    bid = backups.backup_now(settings, now=NOW).manifest.backup_id
    with pytest.raises(IntegrityError, match="policy or IR hash mismatch"):
        backups.restore_now(settings, bid, now=NOW, verify_only=True)


def test_restore_into_an_empty_target_without_the_private_key_is_swapped_back(tmp_path):
    settings = real_state(tmp_path / "var")
    bid = backups.backup_now(settings, now=NOW).manifest.backup_id
    target = tmp_path / "fresh"
    target.mkdir()
    with pytest.raises(VerificationError) as info:
        backups.restore_now(settings, bid, now=NOW, target=target)
    assert info.value.code == "restore_smoke_failed"
    assert list(target.iterdir()) == []
    # with the signing key put in place first (as the runbook says), the same restore succeeds
    kid = service.default_signer(settings).kid
    (target / "keys").mkdir()
    pem = settings.layout.private_key_path(kid)
    (target / "keys" / pem.name).write_bytes(pem.read_bytes())
    (target / "keys" / pem.name).chmod(0o600)
    receipt = backups.restore_now(settings, bid, now=NOW, target=target)
    assert receipt.live_dir == str(target.absolute())
    assert (target / "keyring.json").read_bytes() == settings.layout.keyring.read_bytes()


def test_prune_never_deletes_without_a_rule(tmp_path):
    settings = real_state(tmp_path / "var")
    for _ in range(3):
        backups.backup_now(settings, now=NOW)
    assert backups.prune(settings, KeepRules(), dry_run=False).delete == ()
    plan = backups.prune(settings, KeepRules(keep_last=1), dry_run=True)
    assert len(plan.delete) == 2 and len(backups.list_backups(settings)) == 3
    backups.prune(settings, KeepRules(keep_last=1), dry_run=False)
    assert len(backups.list_backups(settings)) == 1


# --- the saga driver shared by run_restore and the Prefect flow ---------------------------------------


def _ctx(tmp_path, verify_only=False):
    return RestoreContext(backup_id="backup-x", live_dir=tmp_path / "var", verify_only=verify_only)


def test_saga_compensates_completed_steps_in_reverse_and_keeps_the_context_a_step_returns(tmp_path):
    calls: list[str] = []
    saga = RestoreSaga(_ctx(tmp_path))

    def step(name):
        def run(ctx):
            new = ctx.model_copy(deep=True)
            new.check(name, "done")
            return new

        return run

    def undo(name):
        return lambda ctx: calls.append(f"undo {name} after {[c.id for c in ctx.checks]}")

    saga.run(StepName.FETCH, step("a"), undo("fetch"))
    saga.run(StepName.VERIFY, step("b"), undo("verify"))
    saga.run(StepName.REGISTRY, step("c"))

    def boom(ctx):
        raise IntegrityError("injected")

    with pytest.raises(IntegrityError):
        saga.run(StepName.KEYS, boom, undo("keys"))
    saga.unwind(False, ())
    assert calls == [
        "undo keys after ['a', 'b', 'c']",
        "undo verify after ['a', 'b', 'c']",
        "undo fetch after ['a', 'b', 'c']",
    ]
    assert [(r.name, [c.id for c in r.checks]) for r in saga.records] == [
        (StepName.FETCH, ["a"]),
        (StepName.VERIFY, ["b"]),
        (StepName.REGISTRY, ["c"]),
    ]


def test_saga_verify_only_skips_the_mutating_steps(tmp_path):
    saga = RestoreSaga(_ctx(tmp_path, verify_only=True))
    for name in StepName:
        saga.run(name, lambda ctx: None)
    assert [r.status for r in saga.records] == ["ok"] * 6 + ["skipped"] * 2
