"""Compiling a policy (v1 or v2) to IR v1: the one service function behind CLI, API and tasks.

v2 (original §2.4): lint (strict by default; any error raises :class:`PolicyLintError`), hash the
canonical policy (``sha3-256:``), turn string operands into ``{"var": …}``, sort rules by id, copy
adaptivity unchanged, hash the IR. v1: validate (done at parse), hash (``0x``), compile each
constraint with :func:`v1_to_ir_rules`, same IR record and hash rule. Pure and deterministic.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from core.digest import sha3_hex, sha3_prefixed
from core.policy.ir import (
    IrRule,
    Op,
    PolicyIR,
    Severity,
    build_ir,
    ir_canonical_bytes,
    ir_pretty_bytes,
    var_operand,
)
from core.policy.lint import Diagnostic, LintMode, PolicyLintError, has_errors, lint
from core.policy.v1 import PolicyV1, policy_v1_bytes, rule_constraints, v1_to_ir_rules
from core.policy.v2 import PolicyV2, RuleV2, policy_v2_bytes


class CompiledPolicy(BaseModel):
    """The result of a compile. ``policy_bytes`` are the exact canonical bytes behind ``policy_hash``.

    ``rule_constraints`` maps each rule id of a v1 policy to its constraint name (empty for v2); it
    is bookkeeping for reports and is not part of the IR.
    """

    model_config = ConfigDict(frozen=True)

    policy_id: str
    policy_hash: str
    ir: PolicyIR
    ir_hash: str
    lints: tuple[Diagnostic, ...] = ()
    policy_bytes: bytes
    rule_constraints: dict[str, str] = {}

    def ir_bytes(self) -> bytes:
        """Compact canonical IR bytes."""
        return ir_canonical_bytes(self.ir)

    def ir_pretty(self) -> bytes:
        """The IR file as the original writes it (2-space indent, no trailing newline)."""
        return ir_pretty_bytes(self.ir)


def _ir_rule(rule: RuleV2) -> IrRule:
    severity = Severity(rule.severity) if rule.severity is not None else None
    return IrRule(
        id=rule.id, op=Op(rule.op), lhs=var_operand(rule.lhs), rhs=var_operand(rule.rhs), severity=severity
    )


def compile_v2(policy: PolicyV2, mode: LintMode = LintMode.STRICT) -> CompiledPolicy:
    """Lint then compile a v2 policy. Raises :class:`PolicyLintError` if any diagnostic is an error."""
    lints = lint(policy, mode)
    if has_errors(lints):
        raise PolicyLintError(lints, policy_id=policy.id)
    policy_bytes = policy_v2_bytes(policy)
    ir = build_ir(
        policy.id, sha3_prefixed(policy_bytes), [_ir_rule(r) for r in policy.rules], policy.adaptivity
    )
    return CompiledPolicy(
        policy_id=ir.policy_id,
        policy_hash=ir.policy_hash,
        ir=ir,
        ir_hash=ir.ir_hash,
        lints=tuple(lints),
        policy_bytes=policy_bytes,
    )


def compile_v1(policy: PolicyV1) -> CompiledPolicy:
    """Compile a (validated) v1 policy: ``policy_id`` = name, ``policy_hash`` = the ``0x`` v1 hash."""
    policy_bytes = policy_v1_bytes(policy)
    ir = build_ir(policy.name, sha3_hex(policy_bytes), v1_to_ir_rules(policy))
    return CompiledPolicy(
        policy_id=ir.policy_id,
        policy_hash=ir.policy_hash,
        ir=ir,
        ir_hash=ir.ir_hash,
        policy_bytes=policy_bytes,
        rule_constraints=rule_constraints(policy),
    )


def compile_policy(policy: PolicyV1 | PolicyV2, mode: LintMode = LintMode.STRICT) -> CompiledPolicy:
    """Compile either format to IR v1. Raises :class:`PolicyLintError` (v2 lint errors only)."""
    if isinstance(policy, PolicyV1):
        return compile_v1(policy)
    return compile_v2(policy, mode)
