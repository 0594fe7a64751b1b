"""``GET /admin/runs/{run_id}``: the state of a flow run started by an admin route."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from core.auth import Scope
from deployments.api.bodies import BoundedJSONRoute
from deployments.api.deps import Caller, StateDep, require_any
from deployments.api.models import ErrorBody, RunStatus

router = APIRouter(prefix="/admin/runs", tags=["admin"], route_class=BoundedJSONRoute)
READ_SCOPES = (Scope.BACKUP_READ, Scope.KEYS_READ)


@router.get(
    "/{run_id}", response_model=RunStatus, responses={404: {"model": ErrorBody}, 503: {"model": ErrorBody}}
)
async def read_run(run_id: UUID, caller: Caller, state: StateDep) -> RunStatus:
    """Needs backup:read or keys:read."""
    require_any(caller, *READ_SCOPES)
    run = await state.flows.read_run(run_id)
    return RunStatus(**run.model_dump(exclude={"deployment"}))
