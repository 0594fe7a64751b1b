"""Compatibility-mode verification (the original ``POST /verify``): an IR evaluated over given values.

The caller supplies the inputs a policy refers to (``supplier_hashes``, ``ubo_hashes``, roots, any other
scalar) instead of a signed proof, so there is no screening evidence: ``non_membership`` works against plain
lists only, and a rule over a committed key set (``sanctions_root``) or over a missing input cannot be
evaluated and fails closed. Rules are evaluated by :func:`core.rules.evaluate_rule`, statuses come from the
enforcement matrix; the result is a :class:`core.verify.Report` like any other.
"""

from __future__ import annotations

from typing import Any

from core.enforce import violation_status, violations_of, worst
from core.errors import InvalidInputError
from core.events import sink
from core.modes import CheckStatus, EnforcementMode
from core.policy.ir import PolicyIR
from core.policy.select import active_rule_ids
from core.rules import MissingInputError, Outcome, RuleResult, evaluate_rule
from core.verify import Check, CheckKind, Report


class PlainContext:
    """Inputs given by value. Nothing is a committed key set, so nothing is screened."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def lookup(self, name: str) -> Any:
        if name in self.values and self.values[name] is not None:
            return self.values[name]
        if name.endswith("_present"):
            return self.values.get(name.removesuffix("_present")) is not None
        raise MissingInputError(f"context has no input named {name!r}", field=name)

    def is_key_set(self, name: str) -> bool:
        return False

    def screen(self, lhs: str, rhs: str, claimed: dict[str, Any] | None) -> tuple[bool, str, dict[str, Any]]:
        raise MissingInputError("no screening evidence in compatibility mode", field=rhs)


def _rule_check(result: RuleResult, mode: EnforcementMode) -> Check:
    check_id = f"rule:{result.rule_id}"
    if result.result is Outcome.PASS:
        return Check(id=check_id, kind=CheckKind.RULE, status=CheckStatus.OK, message=result.message)
    (violation,) = violations_of([result])
    return Check(
        id=check_id,
        kind=CheckKind.RULE,
        status=violation_status(violation.severity, mode),
        message=f"{violation.severity.value} violation: {result.message}",
    )


def evaluate_ir(ir: PolicyIR, values: dict[str, Any], mode: EnforcementMode) -> Report:
    """Evaluate the active rules of ``ir`` over ``values``; never raises for failing rules."""
    ctx = PlainContext(values)
    try:
        active = set(active_rule_ids(ir, {k: v for k, v in values.items() if not isinstance(v, list)}))
    except InvalidInputError as exc:
        checks = [
            Check(
                id="rule_selection", kind=CheckKind.POLICY, status=CheckStatus.FAIL, message=exc.diagnostics()
            )
        ]
    else:
        checks = [_rule_check(evaluate_rule(rule, ctx), mode) for rule in ir.rules if rule.id in active]
    if not checks:
        checks = [
            Check(id="rules", kind=CheckKind.POLICY, status=CheckStatus.WARN, message="no rule is active")
        ]
    report = Report(result=worst(c.status for c in checks), mode=mode, policy_id=ir.policy_id, checks=checks)
    if (metrics := sink()) is not None:
        metrics.VERIFY_RESULTS.labels(report.result.value).inc()
    return report
