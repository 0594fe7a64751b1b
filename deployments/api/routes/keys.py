"""``/admin/keys``: the keyring (read directly), rotation (Prefect deployment), revocation (direct).

Revocation calls :func:`core.revocation.revoke_key` instead of a flow: it is one immediate, terminal keyring
update (new version, key ``revoked``), not a phased rotation, and must take effect without waiting for a
runner. Every API replica sees it through its keyring watcher.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from core.keyring import Keyring
from core.keys import KID_PATTERN
from core.revocation import revoke_key
from deployments.api.bodies import BoundedJSONRoute
from deployments.api.deps import KeyReader, KeyRevoker, KeyRotator, NowDep, StateDep
from deployments.api.models import ErrorBody, KeyItem, KeyringView, RevokeRequest, RotateRequest, RunAccepted

router = APIRouter(prefix="/admin/keys", tags=["admin"], route_class=BoundedJSONRoute)


def _view(keyring: Keyring) -> KeyringView:
    keys = [
        KeyItem(
            kid=k.kid,
            status=k.status.value,
            valid_from=k.valid_from,
            valid_to=k.valid_to,
            retired_at=k.retired_at,
        )
        for k in keyring.keys
    ]
    return KeyringView(
        version=keyring.version,
        mode=keyring.mode.value,
        default_signing_kid=keyring.default_signing_kid,
        dual_accept_until=keyring.dual_accept_until,
        keys=keys,
    )


@router.get("", response_model=KeyringView, responses={503: {"model": ErrorBody}})
def list_keys(_: KeyReader, state: StateDep, now: NowDep) -> KeyringView:
    return _view(state.current_keyring(now))


@router.post("/rotate", status_code=202, response_model=RunAccepted, responses={503: {"model": ErrorBody}})
async def rotate(body: RotateRequest, _: KeyRotator, state: StateDep) -> RunAccepted:
    """Trigger the rotation deployment (phases 0–3; 2 and 3 pause for approval unless forced)."""
    name = state.config.flows.rotate
    run = await state.flows.trigger(name, body.parameters())
    return RunAccepted(flow_run_id=run.flow_run_id, deployment=name, state=run.state_name)


@router.post(
    "/{kid}/revoke",
    response_model=KeyringView,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
def revoke(
    kid: Annotated[str, Path(pattern=KID_PATTERN)],
    caller: KeyRevoker,
    state: StateDep,
    now: NowDep,
    body: RevokeRequest | None = None,
) -> KeyringView:
    """Revoke a non-default key now: new keyring version, key status ``revoked``."""
    reason = body.reason if body else None
    return _view(revoke_key(state.settings, kid, now=now, actor=f"api:{caller.subject}", reason=reason))
