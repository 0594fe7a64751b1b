"""Flow ``rotate-signing-key``: one phase (or rollback) of the 4-phase signing-key rotation.

Orders the tasks of ``tasks/rotation.py``; every rule lives in ``core/rotation.py``. Phases 2 and 3 pause
for an approval (:class:`RotationApproval`) unless forced; a dry run only reports the keyring diff. The
mutation runs under the global ``cap-mutation`` slot shared with restore, as a saga: each completed step
registers its compensation, and on failure those run in reverse before the error is re-raised.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.utilities.annotations import quote
from pydantic import Field

from core import service
from core.errors import RotationError
from core.rotation import RotationPlan, RotationRequest, make_request
from core.settings import Settings
from tasks import rotation as t
from tasks.locks import mutation_slot


class RotationApproval(RunInput):
    """What an approver sends to resume a paused rotation (Prefect UI, API or ``resume_flow_run``)."""

    approve: bool
    approver: str = Field(min_length=1)
    comment: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _await_approval(preview: RotationPlan, timeout_seconds: int) -> str:
    """Pause until someone approves; returns the approver. Raises RotationError when rejected."""
    summary = "; ".join(preview.diff)
    form = RotationApproval.with_initial_data(
        description=f"Approve {preview.step.action.value}: {summary}", approve=False
    )
    decision = pause_flow_run(wait_for_input=form, timeout=timeout_seconds, poll_interval=2)
    if decision is None or not decision.approve:
        who = decision.approver if decision else "nobody"
        raise RotationError(f"rotation step rejected by {who}", code="rotation_rejected")
    return decision.approver


@flow(name="rotate-signing-key", retries=0)
def rotate_signing_key(
    phase: int,
    old_kid: str | None = None,
    new_kid: str | None = None,
    duration: str = "168h",
    dry_run: bool = False,
    force: bool = False,
    rollback: bool = False,
    census_window: str = "24h",
    approval_timeout_seconds: int = 3600,
) -> dict[str, Any]:
    """Apply one rotation phase 0-3 (``rollback`` for 2→1 and 3→2); returns the outcome as JSON."""
    settings = Settings.from_env()
    request = make_request(
        phase,
        rollback=rollback,
        old_kid=old_kid,
        new_kid=new_kid,
        duration=duration,
        census_window=census_window,
        force=force,
        actor="prefect",
    )
    keyring = t.load_keyring(settings)
    now = _now()
    preview = t.apply(keyring, request, now, t.census(settings, keyring, request, now))
    for line in preview.diff:
        get_run_logger().info("keyring change: %s", line)
    if dry_run or preview.noop:
        return t.report(quote(preview), now, dry_run=dry_run).model_dump(mode="json")
    if request.needs_approval:
        request = request.model_copy(update={"actor": _await_approval(preview, approval_timeout_seconds)})
    with mutation_slot():  # the global cap-mutation slot, shared with restore (tasks/locks.py)
        return _mutate(settings, request).model_dump(mode="json")


def _mutate(settings: Settings, request: RotationRequest) -> service.RotationOutcome:
    """The saga: re-plan inside the slot (state may have moved during an approval), then apply."""
    now = _now()
    keyring = t.load_keyring(settings)
    census = t.census(settings, keyring, request, now)
    undo: list[Callable[[], object]] = []
    try:
        prepared = t.prepare_key(settings, keyring, request, now)
        if prepared is not None:
            undo.append(lambda: t.discard_key(settings, prepared))
        plan = t.apply(keyring, request, now, census, prepared)
        if plan.noop:
            return t.report(quote(plan), now, census=census)
        after = t.write_keyring(settings, quote(plan))
        undo.append(lambda: t.revert_keyring(settings, keyring, now, request.actor, "a rotation step failed"))
        replaced = t.sync_key_statuses(settings, after)
        undo.append(lambda: t.restore_key_statuses(settings, replaced))
        values = t.write_signing_values(settings, after)
        undo.append(lambda: t.write_signing_values(settings, keyring))
        signer = t.verify_signer(settings, after, now)
    except BaseException as exc:
        service.compensate(undo, exc)
        raise
    return t.report(quote(plan), now, census=census, values=values, signer=signer, prepared=prepared)
