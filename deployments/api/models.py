"""What enters and leaves the API: request and response models (``response_model`` on every route)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator, model_validator
from pydantic_core import PydanticCustomError

from core.backup.manifest import BACKUP_ID_PATTERN
from core.documents import lone_surrogate
from core.errors import InvalidInputError
from core.keys import Kid
from core.modes import CheckStatus, EnforcementMode
from core.policy.lint import LintMode
from core.rotation import DURATION_PATTERN, parse_duration
from core.verify import Check, Report


class Result(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


class _In(BaseModel):
    """A request body: unknown fields refused, and text that is not valid Unicode refused by path.

    Flags and the rotation phase are strict: ``"force": 1`` or ``"phase": 3.0`` is a 422, not a guess.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        problem = lone_surrogate(data, "")
        if problem is not None:
            field, found = problem
            raise PydanticCustomError(
                "invalid_unicode",
                "{field} holds text that is not valid Unicode (lone surrogate {found})",
                {"field": field or "the body", "found": found},
            )
        return data


class ErrorBody(BaseModel):
    error: str
    message: str
    details: dict[str, Any] = {}


class Health(BaseModel):
    status: str
    version: str
    build: str | None


class ReadyCheck(BaseModel):
    name: str
    status: CheckStatus
    message: str


class Readiness(BaseModel):
    status: str
    generation: int = Field(0, description="the data directory generation this process serves")
    checks: list[ReadyCheck]


# --- policy -----------------------------------------------------------------------------------------------


class CompileRequest(_In):
    policy_yaml: str | None = Field(None, description="Policy YAML (or JSON) text, v1 or v2")
    policy: dict[str, Any] | None = Field(None, description="Policy as a JSON object")
    lint_mode: LintMode = LintMode.STRICT
    persist: StrictBool = False


class Lint(BaseModel):
    code: str
    level: str
    message: str
    rule_id: str | None = None


class CompileResponse(BaseModel):
    policy_id: str
    policy_hash: str
    ir_hash: str
    ir: dict[str, Any]
    lints: list[Lint]
    stored: bool
    etag: str


class PolicyResponse(BaseModel):
    policy_id: str
    name: str
    version: str
    status: str
    policy_hash: str
    ir_hash: str | None
    ir: dict[str, Any] | None
    etag: str


# --- verify -----------------------------------------------------------------------------------------------


class VerifyOptions(_In):
    enforce_mode: EnforcementMode | None = Field(None, description="Needs verify:admin (default strict)")
    drift_detect: StrictBool = Field(False, description="Needs verify:admin")


class VerifyContext(BaseModel):
    """Inputs for compatibility mode. Extra scalar inputs a policy refers to are allowed."""

    model_config = ConfigDict(extra="allow")
    supplier_hashes: list[str] = []
    ubo_hashes: list[str] = []
    company_commitment_root: str | None = None
    sanctions_root: str | None = None
    jurisdiction_root: str | None = None


class VerifyRequest(_In):
    """Either ``proof`` (a cap-proof.v3 or v2 document) or ``policy_id`` | ``ir`` with a ``context``."""

    proof: dict[str, Any] | None = None
    policy_id: str | None = None
    ir: dict[str, Any] | None = None
    context: VerifyContext | None = None
    options: VerifyOptions = VerifyOptions()
    backend: str | None = Field(None, description="Accepted for compatibility with the original; ignored")


class Trace(BaseModel):
    mode: str
    policy_id: str | None
    enforce_mode: EnforcementMode
    drift_detect: bool


class VerifyResponse(BaseModel):
    result: Result
    policy_id: str | None
    subject: str | None
    kid: str | None
    checks: list[Check]
    trace: Trace

    @classmethod
    def of(cls, report: Report, trace: Trace) -> VerifyResponse:
        return cls(
            result=Result(report.result.value.upper()),
            policy_id=report.policy_id,
            subject=report.subject,
            kid=report.kid,
            checks=report.checks,
            trace=trace,
        )


# --- admin ------------------------------------------------------------------------------------------------


class RunAccepted(BaseModel):
    flow_run_id: str
    deployment: str
    state: str | None


class BackupRequest(_In):
    """Parameters of the ``backup`` flow (all optional)."""

    to_uri: str | None = Field(
        None, description="file://DIR or s3://bucket/prefix; default the data dir's store"
    )
    encrypt: StrictBool = Field(
        False, description="AES-256-GCM with a fresh data key wrapped by the master key"
    )
    pii: Literal["refuse", "warn"] = Field("refuse", description="what a PII finding does")

    def parameters(self) -> dict[str, Any]:
        return self.model_dump()


class RestoreRequest(_In):
    """Parameters of the ``restore`` flow."""

    backup_id: str = Field(pattern=BACKUP_ID_PATTERN)
    verify_only: StrictBool = Field(False, description="run the checks of steps 1-6 and change nothing")
    from_uri: str | None = Field(None, description="where the backup is stored; default the data dir's store")
    allow_key_rollback: StrictBool = Field(False, description="accept a keyring older than the live one")
    keyring_merge: StrictBool = Field(
        False, description="backup keyring older than live: keep the live keyring and restore the rest"
    )


class RotateRequest(_In):
    """Parameters of the ``rotate-signing-key`` flow (phases 2 and 3 pause for approval unless forced)."""

    phase: StrictInt = Field(
        ge=0, le=3, description="0 prepare, 1 dual-accept, 2 sign-switch, 3 decommission"
    )
    old_kid: Kid | None = None
    new_kid: Kid | None = None
    duration: str = Field(
        "168h", pattern=DURATION_PATTERN, description="dual-accept window, e.g. 168h, 7d, 1h30m"
    )
    dry_run: StrictBool = False
    force: StrictBool = Field(False, description="skip approvals and time/census gates")
    rollback: StrictBool = Field(False, description="roll back 2→1 or 3→2")

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        try:
            parse_duration(value)
        except InvalidInputError as exc:
            raise ValueError(exc.message) from None
        return value

    def parameters(self) -> dict[str, Any]:
        """The flow's parameters: the phase as the form's label, absent key ids left to the flow."""
        from flows.forms import PhaseChoice  # the flow's own enum; prefect is loaded here anyway

        params = self.model_dump(exclude_none=True)
        return {**params, "phase": PhaseChoice.of(self.phase).value}


class RevokeRequest(_In):
    reason: str | None = None


class BackupItem(BaseModel):
    backup_id: str
    created_at: str | None
    archive_name: str | None
    size_bytes: int | None
    readable: bool


class BackupList(BaseModel):
    store: str
    backups: list[BackupItem]


class BackupDeleted(BaseModel):
    backup_id: str
    deleted: bool


class KeyItem(BaseModel):
    kid: str
    status: str
    valid_from: str
    valid_to: str
    retired_at: str | None = None


class KeyringView(BaseModel):
    version: int
    mode: str
    default_signing_kid: str
    dual_accept_until: str | None
    keys: list[KeyItem]


class RunStatus(BaseModel):
    flow_run_id: str
    name: str | None
    state_type: str | None
    state_name: str | None
    created: str | None
    start_time: str | None
    end_time: str | None
