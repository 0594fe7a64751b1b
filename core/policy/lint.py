"""The policy v2 linter (original §2.3) and the error raised when compiling a policy that fails it.

Checks, in emission order: E1002 missing legal_basis (error in strict mode, warning in relaxed),
W1002 description missing, E1003 duplicate rule id (once per repeat), E2001 invalid op,
E1001 unknown rule id in an activation — exactly the original's — then ours: E2004 invalid
severity. Messages keep the original's wording. No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from core.errors import InvalidInputError
from core.policy.ir import ALLOWED_OPS, ALLOWED_SEVERITIES
from core.policy.v2 import PolicyV2


class LintMode(StrEnum):
    """Strict makes a missing legal_basis an error; relaxed makes it a warning."""

    STRICT = "strict"
    RELAXED = "relaxed"


class Level(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Diagnostic(BaseModel):
    """One lint finding; ``rule_id`` names the rule when the finding is about one."""

    model_config = ConfigDict(frozen=True)

    code: str
    level: Level
    message: str
    rule_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The wire form (``rule_id`` written as null when absent, as in the original)."""
        return {
            "code": self.code,
            "level": self.level.value,
            "message": self.message,
            "rule_id": self.rule_id,
        }


class PolicyLintError(InvalidInputError):
    """A policy has lint errors; ``details["diagnostics"]`` lists every finding (errors and warnings)."""

    code = "policy_lint_failed"

    def __init__(self, lints: list[Diagnostic], *, policy_id: str | None = None) -> None:
        errors = [d for d in lints if d.level is Level.ERROR]
        summary = "; ".join(f"{d.code} {d.message}" for d in errors)
        super().__init__(
            f"policy has {len(errors)} lint error(s): {summary}",
            policy_id=policy_id,
            diagnostics=[d.to_dict() for d in lints],
            expected="a policy without lint errors",
        )
        self.lints = list(lints)


def _legal_basis(policy: PolicyV2, mode: LintMode) -> Iterator[Diagnostic]:
    if not policy.legal_basis:
        level = Level.ERROR if mode is LintMode.STRICT else Level.WARNING
        yield Diagnostic(code="E1002", level=level, message="missing `legal_basis`")


def _description(policy: PolicyV2) -> Iterator[Diagnostic]:
    if not policy.description:
        yield Diagnostic(code="W1002", level=Level.WARNING, message="description missing")


def _duplicate_ids(policy: PolicyV2) -> Iterator[Diagnostic]:
    seen: set[str] = set()
    for rule in policy.rules:
        if rule.id in seen:
            yield Diagnostic(
                code="E1003", level=Level.ERROR, message=f"duplicate rule ID '{rule.id}'", rule_id=rule.id
            )
        seen.add(rule.id)


def _ops(policy: PolicyV2) -> Iterator[Diagnostic]:
    allowed = ", ".join(ALLOWED_OPS)
    for rule in policy.rules:
        if rule.op not in ALLOWED_OPS:
            yield Diagnostic(
                code="E2001",
                level=Level.ERROR,
                message=f"invalid op '{rule.op}' (allowed: {allowed})",
                rule_id=rule.id,
            )


def _activations(policy: PolicyV2) -> Iterator[Diagnostic]:
    if policy.adaptivity is None:
        return
    known = {rule.id for rule in policy.rules}
    for activation in policy.adaptivity.activations:
        for rule_id in activation.rules:
            if rule_id not in known:
                yield Diagnostic(
                    code="E1001",
                    level=Level.ERROR,
                    rule_id=rule_id,
                    message=f"unknown rule id '{rule_id}' in activation '{activation.when}'",
                )


def _severities(policy: PolicyV2) -> Iterator[Diagnostic]:
    allowed = ", ".join(ALLOWED_SEVERITIES)
    for rule in policy.rules:
        if rule.severity is not None and rule.severity not in ALLOWED_SEVERITIES:
            yield Diagnostic(
                code="E2004",
                level=Level.ERROR,
                rule_id=rule.id,
                message=f"invalid severity '{rule.severity}' (allowed: {allowed})",
            )


def lint(policy: PolicyV2, mode: LintMode = LintMode.RELAXED) -> list[Diagnostic]:
    """All diagnostics for ``policy`` in the original's emission order (ours appended). Never raises."""
    return [
        *_legal_basis(policy, mode),
        *_description(policy),
        *_duplicate_ids(policy),
        *_ops(policy),
        *_activations(policy),
        *_severities(policy),
    ]


def has_errors(lints: list[Diagnostic]) -> bool:
    """True if any diagnostic is an error (HTTP 422 / CLI exit 3 in the original)."""
    return any(d.level is Level.ERROR for d in lints)
