"""Prefect tasks of the signing-key rotation: one service call each, retried only on transient storage errors.

No task takes or returns private key material: keys are loaded from their 0600 files inside the service
functions. Results are never cached (every step reads or writes live state).

Keyrings cross task boundaries wrapped in Prefect's ``quote``: Prefect walks task inputs and results with
``dict(model)``, which calls ``.keys()`` on a model that has a field named ``keys`` (``Keyring`` does) and
fails. Tasks that return a keyring return it quoted, and the flow passes those values (and plans, which hold
keyrings) on quoted; Prefect unwraps a quoted input before calling the task.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from uuid import UUID

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.utilities.annotations import quote

from core import service
from core.keyring import Keyring
from core.keys import KeyStatus
from core.rotation import RotationPlan, RotationRequest
from core.rotation_report import RotationRecord, record_markdown
from core.settings import Settings
from tasks.retry import LOCAL, TRANSIENT_IO

ARTIFACT_KEY = "key-rotation"


@task(name="load-keyring", **TRANSIENT_IO)
def load_keyring(settings: Settings) -> quote[Keyring]:
    return quote(service.load_local_keyring(settings))


@task(name="census", **TRANSIENT_IO)
def census(settings: Settings, keyring: Keyring, request: RotationRequest, now: datetime) -> int:
    return service.rotation_census(settings, keyring, request, now)


@task(name="prepare-key", **LOCAL)
def prepare_key(
    settings: Settings, keyring: Keyring, request: RotationRequest, now: datetime
) -> service.PreparedKey | None:
    return service.prepare_rotation_key(settings, keyring, request, now)


@task(name="apply", **LOCAL)
def apply(
    keyring: Keyring,
    request: RotationRequest,
    now: datetime,
    census: int = 0,
    prepared: service.PreparedKey | None = None,
) -> RotationPlan:
    return service.plan_rotation(keyring, request, now, census, prepared)


@task(name="write-keyring", **TRANSIENT_IO)
def write_keyring(settings: Settings, plan: RotationPlan) -> quote[Keyring]:
    return quote(service.write_rotation_keyring(settings, plan))


@task(name="sync-key-statuses", **TRANSIENT_IO)
def sync_key_statuses(settings: Settings, keyring: Keyring) -> dict[str, KeyStatus]:
    return service.sync_key_statuses(settings, keyring)


@task(name="write-signing-values", **TRANSIENT_IO)
def write_signing_values(settings: Settings, keyring: Keyring) -> Path:
    return service.write_signing_values(settings, keyring)


@task(name="verify-signer", **LOCAL)
def verify_signer(settings: Settings, keyring: Keyring, now: datetime) -> str:
    return service.check_rotation_signer(settings, keyring, now)


@task(name="report", **LOCAL)
def report(
    plan: RotationPlan,
    now: datetime,
    *,
    dry_run: bool = False,
    census: int = 0,
    values: Path | None = None,
    signer: str | None = None,
    prepared: service.PreparedKey | None = None,
) -> service.RotationOutcome:
    return service.rotation_outcome(
        plan, now, dry_run=dry_run, census=census, values=values, signer=signer, prepared=prepared
    )


@task(name="publish-rotation-record", **LOCAL)
def publish_record(record: RotationRecord) -> UUID:
    """The markdown artifact ``key-rotation``: result, keys, versions, approver, timestamps, diff."""
    return create_markdown_artifact(
        key=ARTIFACT_KEY,
        markdown=record_markdown(record),
        description=f"{record.action.value}: {record.result.value}",
    )


# --- compensations ------------------------------------------------------------------------------------


@task(name="revert-keyring", **TRANSIENT_IO)
def revert_keyring(
    settings: Settings, previous: Keyring, now: datetime, actor: str, reason: str
) -> quote[Keyring]:
    return quote(service.revert_rotation_keyring(settings, previous, now, actor, reason))


@task(name="restore-key-statuses", **TRANSIENT_IO)
def restore_key_statuses(settings: Settings, replaced: dict[str, KeyStatus]) -> None:
    service.restore_key_statuses(settings, replaced)


@task(name="discard-key", **TRANSIENT_IO)
def discard_key(settings: Settings, prepared: service.PreparedKey) -> None:
    service.discard_rotation_key(settings, prepared)
