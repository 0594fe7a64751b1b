"""What a person sees of one rotation step: the plan put up for approval and the record of what happened.

Pure (no I/O, ``now`` passed in). Owns the plan digest an approval names (so exactly the approved plan is
applied, or the run asks again), the approver placed into the plan's history events, the approval text
(plan, deadlines, who may approve) and the markdown record a rotation run publishes (diff, approver,
timestamps). Texts only: the Prefect forms and artifacts that carry them live in ``flows/`` and ``tasks/``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum

from pydantic import BaseModel, ConfigDict

from core.canonical import canonical_bytes
from core.digest import sha3_hex
from core.keys import format_timestamp
from core.rotation import RotationAction, RotationPlan

APPROVER_PLACEHOLDER = "approver"  # the actor a plan awaiting approval carries until someone approves


class StepResult(str, Enum):  # noqa: UP042 - str mix-in on purpose (JSON, artifacts)
    APPLIED = "applied"
    NO_CHANGE = "no change"
    DRY_RUN = "dry run"
    REJECTED = "rejected"
    NOT_ANSWERED = "not answered"


class RotationRecord(BaseModel):
    """One rotation run as published: the plan, who decided, and when each thing happened."""

    model_config = ConfigDict(frozen=True)

    action: RotationAction
    result: StepResult
    old_kid: str
    new_kid: str | None
    version_before: int
    version_after: int
    diff: tuple[str, ...]
    planned_at: str
    decided_at: str | None = None
    applied_at: str | None = None
    approver: str | None = None
    comment: str | None = None
    dual_accept_until: str | None = None
    verified_signer: str | None = None


def plan_digest(plan: RotationPlan) -> str:
    """``sha3-256`` of the keyring the plan writes (and the version it replaces): what an approval names."""
    body = {"before": plan.before.version, "after": plan.after.model_dump(mode="json", by_alias=True)}
    return sha3_hex(canonical_bytes(body))


def with_approver(plan: RotationPlan, approver: str) -> RotationPlan:
    """The approved plan with its new history events attributed to ``approver`` (nothing else changes)."""
    count = len(plan.before.history)
    events = tuple(
        e.model_copy(update={"actor": approver}) if i >= count and e.actor == APPROVER_PLACEHOLDER else e
        for i, e in enumerate(plan.after.history)
    )
    after = plan.after.model_copy(update={"history": events})
    request = plan.request.model_copy(update={"actor": approver})
    step = plan.step.model_copy(update={"actor": approver})
    return plan.model_copy(update={"after": after, "request": request, "step": step})


def approval_text(
    plan: RotationPlan, *, now: datetime, timeout: timedelta, approvers: tuple[str, ...]
) -> str:
    """Markdown shown above the approval form: the exact plan, its deadlines, who may approve."""
    step = plan.step
    who = ", ".join(f"`{a}`" for a in approvers) if approvers else "anyone who may resume runs here"
    lines = [
        f"### Approve {step.action.value} (phase {int(plan.request.phase)})",
        f"Old key `{step.old_kid}` → new key `{step.new_kid}`; keyring v{plan.before.version} → "
        f"v{plan.after.version}; planned at {format_timestamp(now)}.",
        "",
        "**Plan** — applied exactly as shown; if the keyring changes before you answer, the run asks again:",
        *(f"- `{line}`" for line in plan.diff),
        "",
        "**Deadlines**",
        f"- answer by {format_timestamp(now + timeout)} ({int(timeout.total_seconds())} s); "
        "no answer ends the run Cancelled and changes nothing",
    ]
    if plan.before.dual_accept_until:
        lines.append(f"- dual-accept ends {plan.before.dual_accept_until}: {_window_note(step.action)}")
    lines += ["", f"**Who may approve**: {who}. Choose *reject* to cancel the run; nothing changes."]
    return "\n".join(lines)


def _window_note(action: RotationAction) -> str:
    if action is RotationAction.DECOMMISSION:
        return "the old key stops verifying once this step is applied"
    return "after it the sign-switch is refused and proofs by the old key stop verifying"


def record_markdown(record: RotationRecord) -> str:
    """The artifact of one rotation run: outcome, keys, versions, who, when, and the keyring diff."""
    rows = [
        ("result", record.result.value),
        ("keys", f"`{record.old_kid}` → `{record.new_kid or '(new key)'}`"),
        ("keyring", f"v{record.version_before} → v{record.version_after}"),
        ("approver", record.approver or "not needed (phase 0/1 or forced)"),
        ("comment", record.comment or "-"),
        ("planned at", record.planned_at),
        ("decided at", record.decided_at or "-"),
        ("applied at", record.applied_at or "-"),
        ("dual-accept until", record.dual_accept_until or "-"),
        ("verified signer", f"`{record.verified_signer}`" if record.verified_signer else "-"),
    ]
    lines = [f"# Key rotation: {record.action.value} — {record.result.value}", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += ["", "## Keyring diff", *(f"- `{line}`" for line in record.diff or ("no change",))]
    return "\n".join(lines) + "\n"
