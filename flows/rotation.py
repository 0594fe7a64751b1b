"""Flow ``rotate-signing-key``: one phase (or rollback) of the 4-phase signing-key rotation.

Orders the tasks of ``tasks/rotation.py``; every rule lives in ``core/rotation.py``. Phases 2 and 3 pause
for an approval (:class:`~flows.forms.RotationApproval`) unless forced: the form shows the exact plan, its
deadlines and who may approve, and names the plan by digest. The approved plan itself is applied (its
timestamps included); if the keyring changed meanwhile, the run asks again. A rejection or an unanswered
request ends the run Cancelled with one line. The mutation runs under the global ``cap-mutation`` slot
shared with restore, as a saga: each completed step registers its compensation, and on failure those run in
reverse before the error is re-raised. Every run publishes the markdown artifact ``key-rotation``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.states import Cancelled, Running, State
from prefect.utilities.annotations import quote

from core import rotation_report as rr
from core import service
from core.errors import RotationError
from core.keys import format_timestamp
from core.rotation import DURATION_PATTERN, RotationPlan, RotationRequest, make_request
from core.settings import Settings
from flows.forms import PhaseChoice, RotationApproval, approval_form, param, rotation_run_name
from tasks import rotation as t
from tasks.locks import mutation_slot

MAX_ASKS = 3  # approvals of a plan the keyring no longer matches before the run gives up


def _now() -> datetime:
    return datetime.now(UTC)


@flow(name="rotate-signing-key", retries=0, flow_run_name=rotation_run_name)
def rotate_signing_key(
    phase: PhaseChoice = param("Phase", description="The step to apply; 2 and 3 wait for an approval"),
    rollback: bool = param("Roll back", False, description="Undo phase 2 (back to 1) or 3 (back to 2)"),
    dry_run: bool = param("Dry run", False, description="Only publish the keyring diff; change nothing"),
    force: bool = param("Force", False, description="Skip the approval, the time gate and the census"),
    duration: str = param(
        "Dual-accept window", "168h", description="Phase 1: e.g. 168h, 7d, 1h30m", pattern=DURATION_PATTERN
    ),
    census_window: str = param(
        "Census window", "24h", description="Phase 3: old-key registry entries this recent block it"
    ),
    old_kid: str = param("Old key id", "", description="Empty: the current default signer"),
    new_kid: str = param("New key id", "", description="Phase 0: a stored key to use; empty: generate one"),
    approval_timeout_seconds: int = param(
        "Approval timeout (s)", 3600, description="Unanswered this long: the run ends Cancelled", minimum=1
    ),
) -> dict[str, Any] | State:
    """Apply one rotation phase 0-3 (``rollback`` for 2→1 and 3→2); returns the outcome as JSON."""
    settings = Settings.from_env()
    request = make_request(
        int(PhaseChoice(phase).phase),
        rollback=rollback,
        old_kid=old_kid or None,
        new_kid=new_kid or None,
        duration=duration,
        census_window=census_window,
        force=force,
        actor="prefect",
    )
    if dry_run or not request.needs_approval:
        return _unattended(settings, request, dry_run)
    request = request.model_copy(update={"actor": rr.APPROVER_PLACEHOLDER})  # until someone approves
    for _ in range(MAX_ASKS):
        done = _with_approval(settings, request, timedelta(seconds=approval_timeout_seconds))
        if done is not None:
            return done
        get_run_logger().warning("the approval does not match the current plan: asking again")
    raise RotationError("the keyring kept changing while waiting for approval", code="rotation_plan_changed")


def _unattended(settings: Settings, request: RotationRequest, dry_run: bool) -> dict[str, Any]:
    """A dry run, phase 0/1, or a forced step: planned and applied inside the slot, nobody asked."""
    planned_at = _now()
    if dry_run:
        keyring = t.load_keyring(settings)
        preview = t.apply(keyring, request, planned_at, t.census(settings, keyring, request, planned_at))
        outcome = t.report(quote(preview), planned_at, dry_run=True)
    else:
        with mutation_slot():  # the global cap-mutation slot, shared with restore (tasks/locks.py)
            outcome = _mutate(settings, request, None)
    assert outcome is not None  # only an approved plan can go stale
    result = rr.StepResult.DRY_RUN if dry_run else _applied_or_not(outcome)
    t.publish_record(_record(outcome, result, planned_at, applied_at=None if dry_run else _now()))
    return outcome.model_dump(mode="json")


def _with_approval(settings: Settings, request: RotationRequest, timeout: timedelta) -> Any:
    """Plan, ask, apply the approved plan. None when the keyring moved on meanwhile (ask again)."""
    planned_at = _now()
    keyring = t.load_keyring(settings)
    preview = t.apply(keyring, request, planned_at, t.census(settings, keyring, request, planned_at))
    if preview.noop:
        outcome = t.report(quote(preview), planned_at)
        t.publish_record(_record(outcome, rr.StepResult.NO_CHANGE, planned_at))
        return outcome.model_dump(mode="json")
    answer = _ask(preview, planned_at, timeout, settings.approvers)
    decided_at = _now()
    if answer is None or not answer.approved:
        return _cancel(preview, planned_at, decided_at, answer, timeout)
    if answer.plan_digest != rr.plan_digest(preview) or (
        settings.approvers and answer.approver not in settings.approvers
    ):
        get_run_logger().warning("approval by %s names another plan or approver", answer.approver)
        return None
    approved = rr.with_approver(preview, answer.approver)
    with mutation_slot():
        outcome = _mutate(settings, approved.request, approved)
    if outcome is None:
        get_run_logger().warning("the keyring changed while the plan waited for approval")
        return None
    record = _record(outcome, rr.StepResult.APPLIED, planned_at, applied_at=_now(), answer=answer)
    t.publish_record(record.model_copy(update={"decided_at": format_timestamp(decided_at)}))
    return outcome.model_dump(mode="json")


def _ask(
    preview: RotationPlan, now: datetime, timeout: timedelta, approvers: tuple[str, ...]
) -> RotationApproval | None:
    """Pause for the approval form; None when nobody answered within ``timeout``."""
    text = rr.approval_text(preview, now=now, timeout=timeout, approvers=approvers)
    form = approval_form(text, rr.plan_digest(preview), approvers)
    try:
        answer: RotationApproval = pause_flow_run(
            wait_for_input=form, timeout=int(timeout.total_seconds()), poll_interval=2
        )
    except FlowPauseTimeout:
        _leave_expired_pause()
        return None
    return answer


def _leave_expired_pause() -> None:
    """Back to Running, so the run can end Cancelled: the server turns any other move out of an expired
    pause into Failed ("never resumed"), which reads like a crash."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run.id, Running(message="approval window over"), force=True)


def _cancel(
    preview: RotationPlan,
    planned_at: datetime,
    decided_at: datetime,
    answer: RotationApproval | None,
    timeout: timedelta,
) -> State:
    """Publish the refusal and end the run Cancelled with one line (nothing was changed)."""
    action = preview.step.action.value
    if answer is None:
        line = f"{action} not approved within {int(timeout.total_seconds())} s; nothing changed"
    else:
        line = f"{action} rejected by {answer.approver}" + (f": {answer.comment}" if answer.comment else "")
    outcome = t.report(quote(preview), planned_at, dry_run=True)
    result = rr.StepResult.NOT_ANSWERED if answer is None else rr.StepResult.REJECTED
    record = _record(outcome, result, planned_at, answer=answer)
    record = record.model_copy(
        update={"decided_at": format_timestamp(decided_at), "version_after": record.version_before}
    )
    t.publish_record(record)
    get_run_logger().info(line)
    return Cancelled(message=line)


def _applied_or_not(outcome: service.RotationOutcome) -> rr.StepResult:
    return rr.StepResult.NO_CHANGE if outcome.noop else rr.StepResult.APPLIED


def _record(
    outcome: service.RotationOutcome,
    result: rr.StepResult,
    planned_at: datetime,
    *,
    applied_at: datetime | None = None,
    answer: RotationApproval | None = None,
) -> rr.RotationRecord:
    return rr.RotationRecord(
        action=outcome.action,
        result=result,
        old_kid=outcome.old_kid,
        new_kid=outcome.new_kid,
        version_before=outcome.version_before,
        version_after=outcome.version_after,
        diff=outcome.diff,
        planned_at=format_timestamp(planned_at),
        applied_at=format_timestamp(applied_at) if applied_at else None,
        approver=answer.approver if answer else None,
        comment=(answer.comment or None) if answer else None,
        dual_accept_until=outcome.dual_accept_until,
        verified_signer=outcome.verified_signer,
    )


def _mutate(
    settings: Settings, request: RotationRequest, approved: RotationPlan | None
) -> service.RotationOutcome | None:
    """The saga. ``approved`` is applied as is if the keyring and census still match it (else None);
    without one, the step is planned here, inside the slot."""
    now = _now()
    keyring = t.load_keyring(settings)
    census = t.census(settings, keyring, request, now)
    if approved is not None:
        current = keyring.unquote() if isinstance(keyring, quote) else keyring
        if current != approved.before or census != approved.step.census:
            return None
        t.apply(keyring, request, now, census)  # the gates still hold now (e.g. dual-accept not over)
    undo: list[Callable[[], object]] = []
    try:
        prepared = t.prepare_key(settings, keyring, request, now)
        if prepared is not None:
            undo.append(lambda: t.discard_key(settings, prepared))
        plan = approved or t.apply(keyring, request, now, census, prepared)
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
