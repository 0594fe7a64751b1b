"""Retention keep-rules for stored backups (restic-style ``keep_last``/``keep_daily``/``keep_weekly``).

A backup is kept if any rule keeps it; unreadable backups (manifest missing or corrupt) are never
deleted automatically, only reported. ``plan_retention`` does no I/O; ``apply_retention`` deletes
unless ``dry_run``.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from core.backup.storage import BackupListing, BackupStore


class KeepRules(BaseModel):
    model_config = ConfigDict(frozen=True)
    keep_last: int = Field(default=0, ge=0)
    keep_daily: int = Field(default=0, ge=0)
    keep_weekly: int = Field(default=0, ge=0)


class RetentionPlan(BaseModel):
    model_config = ConfigDict(frozen=True)
    keep: dict[str, list[str]]
    delete: tuple[str, ...]
    unreadable: tuple[str, ...]
    dry_run: bool = True


def _when(listing: BackupListing) -> datetime:
    return datetime.strptime(listing.created_at or "", "%Y-%m-%dT%H:%M:%SZ")


def _keep_buckets(ordered: list[BackupListing], count: int, bucket: str, keep: dict[str, list[str]]) -> None:
    seen: set[str] = set()
    for listing in ordered:
        if len(seen) >= count:
            return
        stamp = _when(listing)
        key = (
            stamp.strftime("%Y-%m-%d") if bucket == "daily" else "{}-W{:02d}".format(*stamp.isocalendar()[:2])
        )
        if key not in seen:
            seen.add(key)
            keep.setdefault(listing.backup_id, []).append(f"{bucket} {key}")


def plan_retention(listings: list[BackupListing], rules: KeepRules) -> RetentionPlan:
    """Which backups the rules keep (with reasons) and which they delete. No I/O."""
    readable = [b for b in listings if b.readable and b.created_at]
    ordered = sorted(readable, key=lambda b: (b.created_at or "", b.backup_id), reverse=True)
    keep: dict[str, list[str]] = {}
    for listing in ordered[: rules.keep_last]:
        keep.setdefault(listing.backup_id, []).append("last")
    _keep_buckets(ordered, rules.keep_daily, "daily", keep)
    _keep_buckets(ordered, rules.keep_weekly, "weekly", keep)
    delete = tuple(b.backup_id for b in ordered if b.backup_id not in keep)
    unreadable = tuple(b.backup_id for b in listings if b not in readable)
    return RetentionPlan(keep=keep, delete=delete, unreadable=unreadable)


def apply_retention(store: BackupStore, rules: KeepRules, *, dry_run: bool = True) -> RetentionPlan:
    """Plan against ``store`` and delete the planned backups unless ``dry_run``.

    Refuses to delete everything: with no rule set, nothing is deleted. Raises :class:`StorageError`.
    """
    plan = plan_retention(store.list_backups(), rules)
    if not (rules.keep_last or rules.keep_daily or rules.keep_weekly):
        plan = plan.model_copy(update={"delete": ()})
    if not dry_run:
        for backup_id in plan.delete:
            store.delete(backup_id)
    return plan.model_copy(update={"dry_run": dry_run})
