"""Policies: v1 (``lksg.v1``) and v2 documents, the linter, IR v1 and the rule selector.

Public surface (see ``docs/formats/policy.md``)::

    load_policy_text(text, source) / load_policy_file(path) -> PolicyV1 | PolicyV2
    lint(policy_v2, mode) -> list[Diagnostic]
    compile_policy(policy, mode=LintMode.STRICT) -> CompiledPolicy
    load_ir(data) -> PolicyIR
    active_rule_ids(ir, variables) -> list[str]
"""

import importlib
from typing import TYPE_CHECKING, Any

from core.policy.ir import (
    ALLOWED_OPS,
    ALLOWED_SEVERITIES,
    IR_VERSION,
    Activation,
    Adaptivity,
    IrRule,
    Op,
    PolicyIR,
    Predicate,
    Severity,
    build_ir,
    compute_ir_hash,
    effective_severity,
    ir_canonical_bytes,
    ir_pretty_bytes,
    load_ir,
)
from core.policy.lint import Diagnostic, Level, LintMode, PolicyLintError, has_errors, lint
from core.policy.select import active_rule_ids, evaluate_predicate
from core.policy.v1 import (
    STATEMENT_ROOTS,
    ConstraintsV1,
    PolicyV1,
    policy_v1_hash,
    rule_constraint,
    v1_to_ir_rules,
)
from core.policy.v2 import InputSpec, LegalBasis, PolicyV2, RuleV2, policy_v2_hash

if TYPE_CHECKING:
    from core.policy.compile import CompiledPolicy, compile_policy
    from core.policy.load import load_policy_file, load_policy_text

# The compiler and the YAML loader are imported on first use (PEP 562): the verifier imports
# ``core.policy.ir`` and must not load them.
_LAZY = {
    "CompiledPolicy": "core.policy.compile",
    "compile_policy": "core.policy.compile",
    "load_policy_file": "core.policy.load",
    "load_policy_text": "core.policy.load",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "ALLOWED_OPS",
    "ALLOWED_SEVERITIES",
    "IR_VERSION",
    "STATEMENT_ROOTS",
    "Activation",
    "Adaptivity",
    "CompiledPolicy",
    "ConstraintsV1",
    "Diagnostic",
    "InputSpec",
    "IrRule",
    "LegalBasis",
    "Level",
    "LintMode",
    "Op",
    "PolicyIR",
    "PolicyLintError",
    "PolicyV1",
    "PolicyV2",
    "Predicate",
    "RuleV2",
    "Severity",
    "active_rule_ids",
    "build_ir",
    "compile_policy",
    "compute_ir_hash",
    "effective_severity",
    "evaluate_predicate",
    "has_errors",
    "ir_canonical_bytes",
    "ir_pretty_bytes",
    "lint",
    "load_ir",
    "load_policy_file",
    "load_policy_text",
    "policy_v1_hash",
    "policy_v2_hash",
    "rule_constraint",
    "v1_to_ir_rules",
]
