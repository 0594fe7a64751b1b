"""Flow ``restore``: the eight steps of SPEC §4 as tasks, run as a saga, with a signed receipt artifact.

Orders the tasks of ``tasks/restore.py``; the checks live in ``core/backup/restore.py``. The flow
first recovers an interrupted earlier restore, then runs each step through :class:`RestoreSaga`, which
records its completion and timing and, on failure, runs the compensations of the completed steps in
reverse (no Prefect transactions: a retried task would roll them back early). ``verify_only`` runs
steps 1-6 and changes nothing. A real restore holds the global ``cap-mutation`` slot shared with key
rotation, and the per-directory restore lock.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from prefect import flow

from core.backup import service as backups
from core.backup.manifest import BACKUP_ID_PATTERN
from core.backup.restore import RestoreSaga, StepName, StepRecord
from core.backup.swap import restore_lock
from core.errors import CapError, InvalidInputError
from core.settings import Settings
from flows.forms import param, restore_run_name
from tasks import restore as t
from tasks.locks import mutation_slot

OPTIONAL_BACKUP_ID = f"^(|{BACKUP_ID_PATTERN.strip('^$')})$"  # empty: a point-in-time restore instead


def _run_steps(saga: RestoreSaga, job: backups.RestoreJob) -> None:
    finished = False
    try:
        saga.run(StepName.FETCH, lambda c: t.fetch(c, job), t.discard_fetch)
        saga.run(StepName.VERIFY, lambda c: t.verify_integrity(c, job), t.discard_extract)
        saga.run(StepName.STAGING, t.prepare_staging, t.discard_staging)
        saga.run(StepName.REGISTRY, lambda c: t.check_registry(c, job))
        saga.run(StepName.POLICY, lambda c: t.check_policy_store(c, job))
        saga.run(StepName.KEYS, t.check_key_metadata)
        saga.run(StepName.SWAP, lambda c: t.swap_in(c, job), t.swap_back)
        saga.run(StepName.SMOKE, lambda c: t.smoke_check(c, job))
        finished = True
    except CapError as exc:
        saga.annotate(exc)
        raise
    finally:
        saga.unwind(finished, (t.discard_staging, t.discard_fetch))


def _from_replica(
    settings: Settings, url: str, at: str, verify_only: bool, target: str, rollback: bool, merge: bool
) -> dict[str, Any]:
    """A point-in-time restore: the eight steps of :mod:`core.backup.pitr` in one task, same receipt."""
    slot = contextlib.nullcontext() if verify_only else mutation_slot()
    try:
        with slot:
            receipt = t.restore_from_replica(
                settings, url, at or None, verify_only, target or None, rollback, merge
            )
    except CapError as exc:
        t.publish_failure(f"replica {url}", verify_only, [], exc, datetime.now(UTC))
        raise
    t.publish_receipt(receipt)
    return receipt.model_dump(mode="json")


def _into_database(
    settings: Settings,
    backup_id: str,
    from_uri: str,
    verify_only: bool,
    target: str,
    rollback: bool,
    merge: bool,
) -> dict[str, Any]:
    """PostgreSQL mode: the eight steps into the database in one task (ADR 0015), same receipt."""
    slot = contextlib.nullcontext() if verify_only else mutation_slot()
    try:
        with slot:
            receipt = t.restore_database(
                settings, backup_id, from_uri or None, verify_only, target or None, rollback, merge
            )
    except CapError as exc:
        t.publish_failure(backup_id, verify_only, [], exc, datetime.now(UTC))
        raise
    t.publish_receipt(receipt)
    return receipt.model_dump(mode="json")


@flow(name="restore", retries=0, flow_run_name=restore_run_name)
def restore(
    backup_id: str = param(
        "Backup id",
        "",
        description="As listed by `cap backups list`; empty with a replica",
        pattern=OPTIONAL_BACKUP_ID,
    ),
    verify_only: bool = param(
        "Verify only", False, description="Run steps 1-6 (fetch, integrity, checks); change nothing"
    ),
    from_uri: str = param("Store", "", description="file://DIR or s3://bucket/prefix; empty: var/backups"),
    target: str = param("Target dir", "", description="Empty: the data dir"),
    allow_key_rollback: bool = param(
        "Allow keyring rollback", False, description="Accept a keyring older than the live one (a warning)"
    ),
    keyring_merge: bool = param(
        "Merge keyring",
        False,
        description="Restore the data but keep the live keyring, its chain and key metadata "
        "(retired and revoked keys stay so)",
    ),
    from_replica: str = param(
        "Replica (point in time)",
        "",
        description="Instead of a backup: the Litestream replica, file://DIR or s3://bucket/prefix",
    ),
    at: str = param("Point in time", "", description="With a replica: RFC 3339 UTC time; empty: the latest"),
) -> dict[str, Any]:
    """Restore ``backup_id`` from ``from_uri`` (default the data dir's store), or the Litestream replica
    ``from_replica`` as of ``at``, into ``target`` (default the data dir); returns the signed
    ``restore.receipt.v1``. A failure publishes what failed and why."""
    settings = Settings.from_env()
    if bool(backup_id) == bool(from_replica) or (at and not from_replica):
        raise InvalidInputError(
            "name what to restore",
            field="backup_id/from_replica",
            expected="exactly one; at only with a replica",
        )
    if from_replica:
        return _from_replica(
            settings, from_replica, at, verify_only, target, allow_key_rollback, keyring_merge
        )
    if settings.database.is_postgresql:
        return _into_database(
            settings, backup_id, from_uri, verify_only, target, allow_key_rollback, keyring_merge
        )
    records: list[StepRecord] = []
    try:
        with backups.restore_metrics():
            job = t.prepare_restore(
                settings,
                backup_id,
                from_uri or None,
                verify_only,
                target or None,
                allow_key_rollback,
                keyring_merge,
            )
            slot = contextlib.nullcontext() if verify_only else mutation_slot()
            with slot, restore_lock(job.live_dir), job.holding_state(), backups.target_errors(job.live_dir):
                recovered = t.recover(job.live_dir)
                saga = RestoreSaga(job.new_context(datetime.now(UTC)))
                records = saga.records
                _run_steps(saga, job)
            receipt = t.sign_receipt(settings, saga.ctx, saga.records, recovered, datetime.now(UTC))
    except CapError as exc:
        t.publish_failure(backup_id, verify_only, records, exc, datetime.now(UTC))
        raise
    t.publish_receipt(receipt)
    return receipt.model_dump(mode="json")
