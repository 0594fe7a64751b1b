"""Retention keep-rules: keep_last, keep_daily, keep_weekly; dry-run lists what would go."""

from __future__ import annotations

import pytest

from core.backup.retention import KeepRules, apply_retention, plan_retention
from core.backup.storage import BackupListing
from tests.unit.test_backup_helpers import NOW, SIGNER, backup, make_state


def _l(bid, when, readable=True):
    return BackupListing(
        backup_id=bid, created_at=when, archive_name=bid + ".tar.gz", size_bytes=1, readable=readable
    )


LISTINGS = [
    _l("d1a", "2026-05-01T01:00:00Z"),
    _l("d1b", "2026-05-01T23:00:00Z"),
    _l("d2", "2026-04-30T12:00:00Z"),
    _l("d3", "2026-04-29T12:00:00Z"),
    _l("w-prev", "2026-04-22T12:00:00Z"),
    _l("w-older", "2026-04-15T12:00:00Z"),
    _l("broken", None, readable=False),
]


@pytest.mark.parametrize(
    ("rules", "kept"),
    [
        pytest.param(KeepRules(keep_last=2), {"d1b", "d1a"}, id="last-2"),
        pytest.param(KeepRules(keep_daily=2), {"d1b", "d2"}, id="daily-2"),
        pytest.param(KeepRules(keep_weekly=2), {"d1b", "w-prev"}, id="weekly-2"),
        pytest.param(
            KeepRules(keep_last=1, keep_weekly=3), {"d1b", "w-prev", "w-older"}, id="last-1-weekly-3"
        ),
    ],
)
def test_plan(rules, kept):
    plan = plan_retention(LISTINGS, rules)
    assert set(plan.keep) == kept
    assert set(plan.delete) == {b.backup_id for b in LISTINGS if b.readable} - kept
    assert plan.unreadable == ("broken",)


def test_apply_dry_run_then_delete(tmp_path):
    from datetime import timedelta

    from core.backup import create_backup
    from core.backup.storage import FileStore
    from core.layout import DataLayout

    live = make_state(tmp_path / "var")
    store = FileStore(tmp_path / "store")
    for day in range(3):
        create_backup(DataLayout(live), store, SIGNER, now=NOW + timedelta(days=day), created_by="t@h")
    plan = apply_retention(store, KeepRules(keep_last=1))
    assert plan.dry_run and len(plan.delete) == 2 and len(store.list_backups()) == 3
    plan = apply_retention(store, KeepRules(keep_last=1), dry_run=False)
    assert [b.backup_id for b in store.list_backups()] == list(plan.keep)
    assert len(list((tmp_path / "store").iterdir())) == 2


def test_no_rules_deletes_nothing(tmp_path):
    live = make_state(tmp_path / "var")
    store, _ = backup(live, tmp_path / "store")
    plan = apply_retention(store, KeepRules(), dry_run=False)
    assert plan.delete == () and len(store.list_backups()) == 1
