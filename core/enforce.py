"""The enforcer: rule results → violations → a verdict under a mode (SPEC §3).

strict: every violation fails; relaxed: critical and high fail, medium and low warn; audit: nothing
fails on policy grounds, every violation is recorded as a warning. A rule that could not be
evaluated is a violation of at least high severity (fail-closed).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict

from core.events import sink
from core.modes import CheckStatus, EnforcementMode
from core.rules import Outcome, RuleResult, Severity

_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class Violation(BaseModel):
    model_config = ConfigDict(frozen=True)
    constraint: str
    rule_id: str
    severity: Severity
    message: str
    evidence: dict[str, Any]


def violations_of(
    results: Iterable[RuleResult], constraints: dict[str, str] | None = None
) -> list[Violation]:
    """Every failed or unevaluable rule as a violation; ``constraints`` maps rule id → constraint."""
    out = []
    for r in results:
        if r.result is Outcome.PASS:
            continue
        severity = r.severity
        if r.result is Outcome.ERROR and _RANK[severity] < _RANK[Severity.HIGH]:
            severity = Severity.HIGH
        constraint = (constraints or {}).get(r.rule_id, r.rule_id)
        out.append(
            Violation(
                constraint=constraint,
                rule_id=r.rule_id,
                severity=severity,
                message=r.message,
                evidence=r.evidence,
            )
        )
    return out


def violation_status(severity: Severity, mode: EnforcementMode) -> CheckStatus:
    """What one violation of ``severity`` means under ``mode``."""
    if mode is EnforcementMode.AUDIT:
        return CheckStatus.WARN
    if mode is EnforcementMode.STRICT or severity in (Severity.CRITICAL, Severity.HIGH):
        return CheckStatus.FAIL
    return CheckStatus.WARN


def worst(statuses: Iterable[CheckStatus]) -> CheckStatus:
    return max(statuses, key=lambda s: s.severity, default=CheckStatus.OK)


def verdict(violations: Sequence[Violation], mode: EnforcementMode) -> CheckStatus:
    """The policy verdict of ``violations`` under ``mode``: OK with none, else the worst status."""
    return worst(violation_status(v.severity, mode) for v in violations)


# --- metrics ------------------------------------------------------------------------------------


class EnforceResult(str, Enum):  # noqa: UP042 - str mix-in on purpose (metric labels)
    """The ``result`` label of ``cap_enforce_total`` (the seed's success/failure, plus warning)."""

    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"


_RESULT = {
    CheckStatus.OK: EnforceResult.SUCCESS,
    CheckStatus.WARN: EnforceResult.WARNING,
    CheckStatus.FAIL: EnforceResult.FAILURE,
}
_mode_lock = threading.Lock()
_last_mode: list[EnforcementMode | None] = [None]


def note_mode(mode: EnforcementMode) -> bool:
    """Count a mode change (per new mode) when ``mode`` differs from the last one used in this process."""
    with _mode_lock:
        changed = _last_mode[0] is not None and _last_mode[0] is not mode
        _last_mode[0] = mode
    if changed and (metrics := sink()) is not None:
        metrics.ENFORCE_MODE_CHANGES.labels(mode.value).inc()
    return changed


def record_enforcement(
    constraints: Iterable[str], outcome: CheckStatus, mode: EnforcementMode, seconds: float
) -> None:
    """Meter one enforcement decision: result, duration, violated constraints, mode changes."""
    if (metrics := sink()) is not None:
        metrics.ENFORCE_TOTAL.labels(_RESULT[outcome].value).inc()
        metrics.ENFORCE_DURATION.observe(seconds)
        for constraint in constraints:
            metrics.ENFORCE_VIOLATIONS.labels(constraint).inc()
    note_mode(mode)
