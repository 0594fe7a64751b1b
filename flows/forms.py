"""How the flows look in the Prefect UI: parameter fields, readable enum labels, run names, approval forms.

Parameters are declared with :func:`param` (a title, a description and a default the form shows); optional
texts default to ``""`` rather than ``None``, so no form shows a "None" type widget. Run names come from the
parameters (``rotate-phase-2-sign-switch-…``, ``restore-<backup id>-verify-only``), so the runs list says
what each run is. The approval form is a :class:`~prefect.input.RunInput` whose fields are all required
except the comment, and whose description is the exact plan (``core.rotation_report.approval_text``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal

from prefect.input import RunInput
from prefect.runtime import flow_run
from pydantic import Field, create_model

from core.rotation import RotationPhase


def param(title: str, default: Any = ..., *, description: str, **schema: Any) -> Any:
    """A flow parameter's form field: ``title`` and ``description`` shown, ``default`` pre-filled."""
    return Field(default, description=description, json_schema_extra={"title": title, **schema})


class PhaseChoice(str, Enum):  # noqa: UP042 - str mix-in on purpose (the form's values are these labels)
    """The rotation phases as the form's dropdown shows them; an int 0-3 is accepted too."""

    PREPARE = "0 — prepare new key"
    DUAL_ACCEPT = "1 — dual-accept (verifiers accept both keys)"
    SIGN_SWITCH = "2 — sign-switch (new key signs)"
    DECOMMISSION = "3 — decommission (retire old key)"

    @property
    def phase(self) -> RotationPhase:
        return RotationPhase(int(self.value[0]))

    @classmethod
    def of(cls, phase: int) -> PhaseChoice:
        return list(cls)[RotationPhase(phase)]

    @classmethod
    def _missing_(cls, value: object) -> PhaseChoice | None:
        text = str(value).strip()
        if text.isdigit() and int(text) in tuple(RotationPhase):
            return cls.of(int(text))
        return next((c for c in cls if c.name.lower().replace("_", "-") == text.lower()), None)


class Decision(str, Enum):  # noqa: UP042 - str mix-in on purpose (form values)
    APPROVE = "approve"
    REJECT = "reject"


class RotationApproval(RunInput):
    """What an approver sends to resume a paused rotation step (Prefect UI, API or ``resume_flow_run``)."""

    decision: Decision = Field(
        description="approve: apply the plan above exactly; reject: the run ends Cancelled, nothing changes",
        json_schema_extra={"title": "Decision"},
    )
    approver: str = Field(
        min_length=1,
        description="Your name; recorded in the keyring history and the run's artifact",
        json_schema_extra={"title": "Approver"},
    )
    comment: str = Field("", description="Why (kept in the artifact)", json_schema_extra={"title": "Comment"})
    plan_digest: str = Field(
        description="Names the plan you approve (pre-filled; leave as is)",
        json_schema_extra={"title": "Plan digest"},
    )

    @property
    def approved(self) -> bool:
        return self.decision is Decision.APPROVE


def approval_form(description: str, digest: str, approvers: tuple[str, ...]) -> type[RotationApproval]:
    """The form for one plan: its digest pre-filled, the approver limited to ``approvers`` when set."""
    fields: dict[str, Any] = {
        "plan_digest": (
            str,
            Field(
                digest,
                description="Names the plan you approve (pre-filled; leave as is)",
                json_schema_extra={"title": "Plan digest"},
            ),
        )
    }
    if approvers:
        fields["approver"] = (
            Literal[approvers],  # type: ignore[valid-type]
            Field(
                description="Who approves (CAP_ROTATION_APPROVERS)", json_schema_extra={"title": "Approver"}
            ),
        )
    model = create_model("RotationApproval", __base__=RotationApproval, **fields)
    model._description = description
    return model


# --- run names --------------------------------------------------------------------------------------------


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def rotation_run_name() -> str:
    """``rotate-phase-2-sign-switch-20261206-110501`` (``rotate-rollback-…``, ``…-dry-run``)."""
    p = flow_run.parameters
    choice = PhaseChoice(p["phase"])
    rollback = bool(p.get("rollback"))
    action = choice.name.lower().replace("_", "-")
    words = ["rotate", "rollback" if rollback else "", f"phase-{int(choice.phase)}", action]
    words += ["dry-run" if p.get("dry_run") else "", _stamp()]
    return "-".join(w for w in words if w)


def restore_run_name() -> str:
    """``restore-<backup id>`` or ``restore-<backup id>-verify-only`` (``restore-pitr-<at|latest>``)."""
    p = flow_run.parameters
    what = p.get("backup_id") or "pitr-" + (p.get("at") or "latest")
    return f"restore-{what}" + ("-verify-only" if p.get("verify_only") else "")


def verification_run_name() -> str:
    """``verify-relaxed-all-20261206-110501`` (``…-last-50-…`` with a limit)."""
    p = flow_run.parameters
    mode = getattr(p.get("mode"), "value", p.get("mode") or "relaxed")
    scope = f"last-{p['limit']}" if p.get("limit") else "all"
    return f"verify-{mode}-{scope}-{_stamp()}"
