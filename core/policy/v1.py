"""Policy v1 (``lksg.v1``, original §2.1 plus our constraints): record, validation, hash, IR rules.

Constraints keep the original's declaration order (require_at_least_one_ubo, supplier_count_max,
ubo_count_min?, require_statement_roots?) followed by ours (no_sanctioned_suppliers?,
no_sanctioned_ubos?, max_high_risk_suppliers?, max_tier?). Absent optionals are omitted from the
canonical JSON, so the original's hashes still hold. Every constraint compiles to IR rules
(:func:`v1_to_ir_rules`) so one evaluator serves both policy formats. No I/O here.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr
from pydantic_core import PydanticCustomError

from core.canonical import canonical_bytes
from core.digest import sha3_hex
from core.policy.ir import IrRule, Op, Severity

STATEMENT_ROOTS: tuple[str, ...] = ("sanctions_root", "jurisdiction_root")
STATEMENT_ROOT_RULE_PREFIX = "require_statement_root_"
_U32_MAX = 2**32 - 1


def _expect(ok: bool, message: str, expected: str) -> None:
    if not ok:
        raise PydanticCustomError("cap_expected", message, {"expected": expected})


def _version(value: str) -> str:
    _expect(value.startswith("lksg.v"), "version must start with 'lksg.v'", "a version like 'lksg.v1'")
    return value


def _name(value: str) -> str:
    _expect(bool(value.strip()), "name must not be blank", "a non-blank policy name")
    return value


def _created_at(value: str) -> str:
    _expect("T" in value, "created_at is not a timestamp", "an RFC 3339 timestamp like 2025-10-25T09:00:00Z")
    return value


def _bounded(low: int) -> AfterValidator:
    def check(value: int) -> int:
        _expect(
            low <= value <= _U32_MAX, f"value {value} out of range", f"an integer from {low} to {_U32_MAX}"
        )
        return value

    return AfterValidator(check)


def _roots(value: tuple[str, ...]) -> tuple[str, ...]:
    allowed = ", ".join(STATEMENT_ROOTS)
    _expect(bool(value), "require_statement_roots must not be empty", f"one or more of {allowed}")
    for root in value:
        _expect(root in STATEMENT_ROOTS, f"unknown statement root {root!r}", f"one of {allowed}")
    _expect(len(set(value)) == len(value), "a statement root is listed twice", "each root at most once")
    return value


Positive = Annotated[StrictInt, _bounded(1)]
NonNegative = Annotated[StrictInt, _bounded(0)]


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True)


class ConstraintsV1(_Value):
    """The v1 constraints, in hashing order (the original's four first, then ours)."""

    require_at_least_one_ubo: StrictBool
    supplier_count_max: Positive
    ubo_count_min: Positive | None = None
    require_statement_roots: Annotated[tuple[StrictStr, ...], AfterValidator(_roots)] | None = None
    no_sanctioned_suppliers: StrictBool | None = None
    no_sanctioned_ubos: StrictBool | None = None
    max_high_risk_suppliers: NonNegative | None = None
    max_tier: Positive | None = None


class PolicyV1(_Value):
    """A ``lksg.v1`` policy; ``notes`` defaults to "" and is always hashed."""

    version: Annotated[StrictStr, AfterValidator(_version)]
    name: Annotated[StrictStr, AfterValidator(_name)]
    created_at: Annotated[StrictStr, AfterValidator(_created_at)]
    constraints: ConstraintsV1
    notes: StrictStr = ""


def policy_v1_bytes(policy: PolicyV1) -> bytes:
    """The canonical compact JSON that is hashed (declaration order, absent optionals omitted)."""
    return canonical_bytes(policy)


def policy_v1_hash(policy: PolicyV1) -> str:
    """``0x`` + SHA3-256 of :func:`policy_v1_bytes` (the original's v1 policy hash)."""
    return sha3_hex(policy_v1_bytes(policy))


_BOUNDS: dict[str, tuple[Op, str, Severity]] = {
    "supplier_count_max": (Op.RANGE_MAX, "supplier_count", Severity.MEDIUM),
    "ubo_count_min": (Op.RANGE_MIN, "ubo_count", Severity.MEDIUM),
    "max_high_risk_suppliers": (Op.RANGE_MAX, "high_risk_supplier_count", Severity.MEDIUM),
    "max_tier": (Op.RANGE_MAX, "max_supplier_tier", Severity.HIGH),
}
_SANCTIONED: dict[str, str] = {
    "no_sanctioned_suppliers": "supplier_hashes",
    "no_sanctioned_ubos": "ubo_hashes",
}


def _rule(rule_id: str, op: Op, var: str, rhs: object, severity: Severity) -> IrRule:
    return IrRule(id=rule_id, op=op, lhs={"var": var}, rhs=rhs, severity=severity)


def _rules_for(name: str, value: object) -> list[IrRule]:
    """The rules one constraint compiles to; an absent or false constraint compiles to none."""
    if value is None or value is False:
        return []
    if name == "require_at_least_one_ubo":
        return [_rule(name, Op.RANGE_MIN, "ubo_count", 1, Severity.HIGH)]
    if name == "require_statement_roots" and isinstance(value, tuple):
        return [
            _rule(STATEMENT_ROOT_RULE_PREFIX + r, Op.EQ, f"{r}_present", True, Severity.HIGH) for r in value
        ]
    if name in _SANCTIONED:
        return [
            _rule(name, Op.NON_MEMBERSHIP, _SANCTIONED[name], {"var": "sanctions_root"}, Severity.CRITICAL)
        ]
    op, var, severity = _BOUNDS[name]
    return [_rule(name, op, var, value, severity)]


def v1_to_ir_rules(policy: PolicyV1) -> list[IrRule]:
    """The IR rules for each set constraint, in constraint order (``compile_policy`` sorts them)."""
    rules: list[IrRule] = []
    for name in ConstraintsV1.model_fields:
        rules.extend(_rules_for(name, getattr(policy.constraints, name)))
    return rules


def rule_constraint(rule_id: str) -> str | None:
    """The v1 constraint a compiled rule id came from, or ``None`` if it is not a v1 rule id."""
    if rule_id.startswith(STATEMENT_ROOT_RULE_PREFIX):
        root = rule_id.removeprefix(STATEMENT_ROOT_RULE_PREFIX)
        return "require_statement_roots" if root in STATEMENT_ROOTS else None
    return rule_id if rule_id in ConstraintsV1.model_fields else None


def rule_constraints(policy: PolicyV1) -> dict[str, str]:
    """Rule id → constraint name for every rule :func:`v1_to_ir_rules` produces for ``policy``."""
    return {rule.id: rule_constraint(rule.id) or rule.id for rule in v1_to_ir_rules(policy)}
