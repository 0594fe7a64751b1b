"""``POST /admin/restores``: start the restore deployment (8-step saga) for one backup."""

from __future__ import annotations

from fastapi import APIRouter

from core.backup.manifest import check_backup_id
from deployments.api.bodies import BoundedJSONRoute
from deployments.api.deps import BackupRestorer, StateDep
from deployments.api.models import ErrorBody, RestoreRequest, RunAccepted

router = APIRouter(prefix="/admin/restores", tags=["admin"], route_class=BoundedJSONRoute)


@router.post("", status_code=202, response_model=RunAccepted, responses={503: {"model": ErrorBody}})
async def create_restore(body: RestoreRequest, _: BackupRestorer, state: StateDep) -> RunAccepted:
    """Trigger a restore (or with ``verify_only`` a dry check that changes nothing)."""
    name = state.config.flows.restore
    params = {**body.model_dump(exclude_none=True), "backup_id": check_backup_id(body.backup_id)}
    run = await state.flows.trigger(name, params)
    return RunAccepted(flow_run_id=run.flow_run_id, deployment=name, state=run.state_name)
