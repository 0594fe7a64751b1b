"""Prefect tasks of the ``restore`` flow: the eight steps of :mod:`core.backup.restore` and their
compensations, one task each.

Every step task works on a copy of the context and returns it, so a retried attempt never sees the
checks of a failed one. Only the fetch retries (transient storage errors); the other steps are local
and deterministic. The receipt is signed inside :func:`sign_receipt` by the configured key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import task
from prefect.artifacts import create_markdown_artifact

from core.backup import restore as steps
from core.backup import service as backups
from core.backup.report import failure_markdown, restore_markdown
from core.backup.restore import RestoreContext, RestoreReceipt, StepRecord
from core.backup.swap import Recovery
from core.errors import CapError
from core.keys import format_timestamp
from core.settings import Settings
from tasks.retry import LOCAL, TRANSIENT_IO

RECEIPT_KEY = "restore-receipt"


def _on_copy(step: Callable[..., None], ctx: RestoreContext, *args: Any) -> RestoreContext:
    work = ctx.model_copy(deep=True)
    step(work, *args)
    return work


@task(name="prepare-restore", **LOCAL)
def prepare_restore(
    settings: Settings,
    backup_id: str,
    from_uri: str | None,
    verify_only: bool,
    target: str | None,
    allow_key_rollback: bool,
    keyring_merge: bool = False,
) -> backups.RestoreJob:
    return backups.prepare_restore(
        settings,
        backup_id,
        from_uri=from_uri,
        verify_only=verify_only,
        target=target,
        allow_key_rollback=allow_key_rollback,
        keyring_merge=keyring_merge,
    )


@task(name="restore-from-replica", **LOCAL)
def restore_from_replica(
    settings: Settings,
    url: str,
    at: str | None,
    verify_only: bool,
    target: str | None,
    allow_key_rollback: bool = False,
    keyring_merge: bool = False,
) -> RestoreReceipt:
    """The point-in-time restore's eight steps (Litestream fetch included: not retried, it is no single
    idempotent download) and its signed receipt."""
    return backups.restore_from_replica(
        settings,
        url,
        now=datetime.now(UTC),
        at=at,
        target=target,
        verify_only=verify_only,
        allow_key_rollback=allow_key_rollback,
        keyring_merge=keyring_merge,
    )


@task(name="restore-database", **LOCAL)
def restore_database(
    settings: Settings,
    backup_id: str,
    from_uri: str | None,
    verify_only: bool,
    target: str | None = None,
    allow_key_rollback: bool = False,
    keyring_merge: bool = False,
) -> RestoreReceipt:
    """PostgreSQL mode: the eight steps of :mod:`core.backup.pg_restore` (staging schema, one-transaction
    switch) and the signed receipt, in one task (the steps share one database lock)."""
    return backups.restore_now(
        settings,
        backup_id,
        now=datetime.now(UTC),
        from_uri=from_uri,
        verify_only=verify_only,
        target=target,
        allow_key_rollback=allow_key_rollback,
        keyring_merge=keyring_merge,
    )


@task(name="recover", **LOCAL)
def recover(live_dir: Path) -> Recovery:
    """Finish or undo an interrupted earlier restore of ``live_dir`` before starting."""
    return steps.recover(live_dir)


@task(name="1-fetch", **TRANSIENT_IO)
def fetch(ctx: RestoreContext, job: backups.RestoreJob) -> RestoreContext:
    return _on_copy(steps.fetch_backup, ctx, job.store, job.options.trusted_keys)


@task(name="2-verify-integrity", **LOCAL)
def verify_integrity(ctx: RestoreContext, job: backups.RestoreJob) -> RestoreContext:
    return _on_copy(steps.verify_integrity, ctx, job.options.key_wrapper)


@task(name="3-prepare-staging", **LOCAL)
def prepare_staging(ctx: RestoreContext) -> RestoreContext:
    return _on_copy(steps.prepare_staging, ctx)


@task(name="4-check-registry", **LOCAL)
def check_registry(ctx: RestoreContext, job: backups.RestoreJob) -> RestoreContext:
    return _on_copy(steps.check_registry, ctx, job.options.expected_registry_tables)


@task(name="5-check-policy-store", **LOCAL)
def check_policy_store(ctx: RestoreContext, job: backups.RestoreJob) -> RestoreContext:
    return _on_copy(
        steps.check_policy_store, ctx, job.options.policy_rehash, job.options.expected_policy_tables
    )


@task(name="6-check-key-metadata", **LOCAL)
def check_key_metadata(ctx: RestoreContext) -> RestoreContext:
    """Refuses a keyring older than the live one unless ``allow_key_rollback``."""
    return _on_copy(steps.check_key_metadata, ctx)


@task(name="7-swap-in", **LOCAL)
def swap_in(ctx: RestoreContext, job: backups.RestoreJob) -> RestoreContext:
    """Completeness check, then the journalled atomic swap."""
    return _on_copy(steps.swap_in, ctx, job.options.hook)


@task(name="8-smoke-check", **LOCAL)
def smoke_check(ctx: RestoreContext, job: backups.RestoreJob) -> RestoreContext:
    """Smoke checks on the new live state; swaps back automatically when they fail."""
    return _on_copy(steps.smoke_check, ctx, job.options.smoke, job.options.hook, job.options.keep_old)


# --- compensations (run in reverse on failure) and clean-up ----------------------------------------


@task(name="discard-fetch", **LOCAL)
def discard_fetch(ctx: RestoreContext) -> None:
    steps.discard_fetch(ctx)


@task(name="discard-extract", **LOCAL)
def discard_extract(ctx: RestoreContext) -> None:
    steps.discard_extract(ctx)


@task(name="discard-staging", **LOCAL)
def discard_staging(ctx: RestoreContext) -> None:
    steps.discard_staging(ctx)


@task(name="swap-back", **LOCAL)
def swap_back(ctx: RestoreContext) -> None:
    steps.swap_back(ctx)


# --- receipt --------------------------------------------------------------------------------------


@task(name="sign-receipt", **LOCAL)
def sign_receipt(
    settings: Settings, ctx: RestoreContext, records: Sequence[StepRecord], recovered: Recovery, now: datetime
) -> RestoreReceipt:
    return backups.restore_receipt(settings, ctx, records, recovered, now)


@task(name="publish-restore-receipt", **LOCAL)
def publish_receipt(receipt: RestoreReceipt) -> UUID:
    """A markdown artifact (key ``restore-receipt``): every step with status, timing and checks."""
    return create_markdown_artifact(
        key=RECEIPT_KEY, markdown=restore_markdown(receipt), description=f"restore of {receipt.backup_id}"
    )


@task(name="publish-restore-failure", **LOCAL)
def publish_failure(
    backup_id: str, verify_only: bool, records: Sequence[StepRecord], error: CapError, now: datetime
) -> UUID:
    """The same artifact key, for a failed restore: the step that failed, the error, the checks so far."""
    markdown = failure_markdown(backup_id, verify_only, records, error, format_timestamp(now))
    return create_markdown_artifact(
        key=RECEIPT_KEY, markdown=markdown, description=f"FAILED restore of {backup_id}: {error.code}"
    )
