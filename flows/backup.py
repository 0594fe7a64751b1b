"""Flow ``backup``: one signed backup of the data dir, then retention, then a markdown report artifact.

Orders the tasks of ``tasks/backup.py``; every rule lives in ``core/backup``. Runs under the global
``cap-mutation`` slot, so a restore or key rotation cannot change the live dir while it is snapshotted.
Scheduled daily by the ``backup-daily`` deployment in ``prefect.yaml``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow

from core.backup.retention import KeepRules
from core.backup.scan import PiiMode
from core.settings import Settings
from tasks import backup as t
from tasks.locks import mutation_slot

SLOT_TIMEOUT_S = 120  # a backup may wait for a short rotation step; restore and rotation fail fast


@flow(name="backup", retries=0)
def backup(
    to_uri: str | None = None,
    encrypt: bool = False,
    pii: PiiMode = PiiMode.REFUSE,
    keep_last: int = 0,
    keep_daily: int = 0,
    keep_weekly: int = 0,
) -> dict[str, Any]:
    """Back up into ``to_uri`` (default ``file://<data_dir>/backups``); prune when a keep-rule is set."""
    settings = Settings.from_env()
    rules = KeepRules(keep_last=keep_last, keep_daily=keep_daily, keep_weekly=keep_weekly)
    with mutation_slot(SLOT_TIMEOUT_S):
        result = t.back_up(settings, to_uri, encrypt, pii, datetime.now(UTC))
    retention = t.apply_retention(settings, to_uri, rules) if keep_last or keep_daily or keep_weekly else None
    t.publish_backup_report(result, retention)
    return {
        "backup_id": result.manifest.backup_id,
        "store": result.store_uri,
        "archive": result.manifest.archive.model_dump(mode="json"),
        "total_files": result.manifest.total_files,
        "deleted": list(retention.delete) if retention else [],
    }
