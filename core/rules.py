"""The one rule evaluator: every IR op, over a context that is either the prover's data or a proof.

Operands are ``{"var": name}`` (looked up in the context) or literals. Range ops on a list compare
its length. ``non_membership`` against a committed key set (the sanctions root) is delegated to the
context, which at proof build screens the real names and produces Merkle evidence, and at verify
re-checks that evidence against the public root. A rule that cannot be evaluated yields ``error``
(counted as a high violation downstream: fail-closed).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from core.errors import CapError
from core.policy.ir import IrRule, Op, Severity, effective_severity

__all__ = [
    "Context",
    "ListLength",
    "MissingInputError",
    "Op",
    "Outcome",
    "RuleResult",
    "Severity",
    "evaluate_rule",
    "evaluate_rules",
]


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 - a rule outcome, not a password
    FAIL = "fail"
    ERROR = "error"


class MissingInputError(CapError):
    """A rule refers to an input the context does not have (fail-closed)."""

    code = "missing_input"


class RuleResult(BaseModel):
    """One rule's outcome with the public evidence a verifier re-checks."""

    model_config = ConfigDict(frozen=True)
    rule_id: str
    op: str
    result: Outcome
    severity: Severity
    message: str
    evidence: dict[str, Any]


class ListLength:
    """A list known only by its length (what a verifier sees of the prover's lists)."""

    __slots__ = ("length",)

    def __init__(self, length: int) -> None:
        self.length = length


class Context(Protocol):
    def lookup(self, name: str) -> Any:
        """The value of input ``name``; raises :class:`MissingInputError`."""

    def is_key_set(self, name: str) -> bool:
        """True if ``name`` denotes a committed key set (non-membership needs Merkle evidence)."""

    def screen(self, lhs: str, rhs: str, claimed: dict[str, Any] | None) -> tuple[bool, str, dict[str, Any]]:
        """Non-membership of the items of ``lhs`` in the key set ``rhs``: (passed, message, evidence)."""


def _var(operand: Any) -> str | None:
    if isinstance(operand, dict) and set(operand) == {"var"} and isinstance(operand["var"], str):
        return operand["var"]
    return None


def _resolve(operand: Any, ctx: Context) -> Any:
    name = _var(operand)
    return ctx.lookup(name) if name is not None else operand


def _number(value: Any, side: str) -> int:
    if isinstance(value, ListLength):
        return value.length
    if isinstance(value, (list, tuple)):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise MissingInputError(f"{side} is not a number or list", found=type(value).__name__)


def _public(value: Any) -> Any:
    """What may appear in evidence: scalars as they are, lists only by length."""
    if isinstance(value, ListLength):
        return {"len": value.length}
    if isinstance(value, (list, tuple)):
        return {"len": len(value)}
    return value


def _compare(op: Op, lhs: Any, rhs: Any) -> bool:
    if op is Op.EQ:
        return type(lhs) is type(rhs) and lhs == rhs
    if op is Op.RANGE_MIN:
        return _number(lhs, "lhs") >= _number(rhs, "rhs")
    if op is Op.RANGE_MAX:
        return _number(lhs, "lhs") <= _number(rhs, "rhs")
    if not isinstance(rhs, (list, tuple)):
        raise MissingInputError(f"{op.value} needs a list on the right", found=type(rhs).__name__)
    items = lhs if isinstance(lhs, (list, tuple)) else [lhs]
    hits = [x for x in items if x in rhs]
    return len(hits) == len(items) if op is Op.MEMBERSHIP else not hits


def evaluate_rule(rule: IrRule, ctx: Context, claimed: dict[str, Any] | None = None) -> RuleResult:
    """Evaluate one rule. ``claimed`` is the evidence a proof carries (verify side) or ``None``."""
    severity = effective_severity(rule)

    def result(outcome: Outcome, message: str, evidence: dict[str, Any]) -> RuleResult:
        return RuleResult(
            rule_id=rule.id, op=rule.op, result=outcome, severity=severity, message=message, evidence=evidence
        )

    op = Op(rule.op)
    try:
        lhs_name, rhs_name = _var(rule.lhs), _var(rule.rhs)
        if op is Op.NON_MEMBERSHIP and lhs_name and rhs_name and ctx.is_key_set(rhs_name):
            passed, message, evidence = ctx.screen(lhs_name, rhs_name, claimed)
            return result(Outcome.PASS if passed else Outcome.FAIL, message, evidence)
        lhs, rhs = _resolve(rule.lhs, ctx), _resolve(rule.rhs, ctx)
        passed = _compare(op, lhs, rhs)
    except MissingInputError as exc:
        return result(Outcome.ERROR, f"cannot evaluate: {exc.message}", {})
    evidence = {"lhs": _public(lhs), "rhs": _public(rhs)}
    verdict = "holds" if passed else "violated"
    return result(
        Outcome.PASS if passed else Outcome.FAIL,
        f"{_describe(rule.lhs)} {op.value} {_describe(rule.rhs)} {verdict}",
        evidence,
    )


def _describe(operand: Any) -> str:
    name = _var(operand)
    return name if name is not None else repr(operand)


def evaluate_rules(rules: Sequence[IrRule], ctx: Context) -> list[RuleResult]:
    return [evaluate_rule(rule, ctx) for rule in rules]
