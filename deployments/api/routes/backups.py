"""``/admin/backups``: start a backup (Prefect deployment), list and delete stored backups."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from core.backup.manifest import BACKUP_ID_PATTERN, check_backup_id
from core.backup.storage import open_store
from deployments.api.bodies import BoundedJSONRoute
from deployments.api.deps import BackupCreator, BackupDeleter, BackupReader, StateDep
from deployments.api.models import (
    BackupDeleted,
    BackupItem,
    BackupList,
    BackupRequest,
    ErrorBody,
    RunAccepted,
)

router = APIRouter(prefix="/admin/backups", tags=["admin"], route_class=BoundedJSONRoute)
UNAVAILABLE = {503: {"model": ErrorBody, "description": "Prefect unreachable"}}


@router.post("", status_code=202, response_model=RunAccepted, responses=UNAVAILABLE)
async def create_backup(_: BackupCreator, state: StateDep, body: BackupRequest | None = None) -> RunAccepted:
    """Trigger the backup deployment; returns the flow run id at once."""
    name = state.config.flows.backup
    run = await state.flows.trigger(name, (body or BackupRequest()).parameters())
    return RunAccepted(flow_run_id=run.flow_run_id, deployment=name, state=run.state_name)


@router.get("", response_model=BackupList)
def list_backups(_: BackupReader, state: StateDep) -> BackupList:
    """The backups in the configured store (read directly, no flow)."""
    uri = state.config.backup_store_uri(state.settings)
    items = [BackupItem(**b.model_dump()) for b in open_store(uri).list_backups()]
    return BackupList(store=uri, backups=items)


@router.delete("/{backup_id}", response_model=BackupDeleted, responses={404: {"model": ErrorBody}})
def delete_backup(
    backup_id: Annotated[str, Path(pattern=BACKUP_ID_PATTERN)], _: BackupDeleter, state: StateDep
) -> BackupDeleted:
    """Delete one backup (manifest and archive) from the store, directly."""
    open_store(state.config.backup_store_uri(state.settings)).delete(check_backup_id(backup_id))
    return BackupDeleted(backup_id=backup_id, deleted=True)
