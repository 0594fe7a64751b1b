"""Prefect tasks of the ``backup`` flow: one service call each; storage tasks retry transient errors only.

A failed attempt leaves nothing stored (the archive upload is aborted, the manifest is written last),
so a retry simply takes a fresh backup id. No task takes or returns key material.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from prefect import task
from prefect.artifacts import create_markdown_artifact

from core.backup import BackupResult
from core.backup import service as backups
from core.backup.report import backup_markdown
from core.backup.retention import KeepRules, RetentionPlan
from core.backup.scan import PiiMode
from core.settings import Settings
from tasks.retry import LOCAL, TRANSIENT_IO

REPORT_KEY = "backup-report"


@task(name="back-up", **TRANSIENT_IO)
def back_up(
    settings: Settings, to_uri: str | None, encrypt: bool, pii: PiiMode, now: datetime
) -> BackupResult:
    """Snapshot, scan, archive, (encrypt,) upload and sign: :func:`core.backup.service.backup_now`."""
    return backups.backup_now(
        settings, now=now, to_uri=to_uri, encrypt=encrypt, pii=pii, created_by="prefect"
    )


@task(name="apply-retention", **TRANSIENT_IO)
def apply_retention(settings: Settings, to_uri: str | None, rules: KeepRules) -> RetentionPlan:
    """Delete the backups no keep-rule keeps (none when no rule is set)."""
    return backups.prune(settings, rules, from_uri=to_uri, dry_run=False)


@task(name="publish-backup-report", **LOCAL)
def publish_backup_report(result: BackupResult, retention: RetentionPlan | None) -> UUID:
    """A markdown artifact (key ``backup-report``): files, sizes and hashes of this backup."""
    return create_markdown_artifact(
        key=REPORT_KEY,
        markdown=backup_markdown(result, retention),
        description=f"backup {result.manifest.backup_id}",
    )
