"""Policy vectors: v1/v2 documents → policy hash, IR and IR hash, or the error they must raise.

The original's goldens (reference policy v2 → policy_hash / ir_hash / 435-byte IR, the v1 "Test
Policy" hash) are constants here: the generator refuses to write a vector that disagrees with them.
Negatives are named for what they break. Each vector: ``input`` {source, text, mode} (or {ir}) and
either ``expected`` or ``expected_error`` {code, field?, line?, lint_codes?}.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.errors import CapError
from core.policy import LintMode, active_rule_ids, compile_policy, load_ir, load_policy_text
from core.policy.lint import PolicyLintError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

GOLDEN_V2_TEXT = """\
# Minimal LkSG policy (v2 format), the original's reference policy.
id: lksg.v1
version: "1.0"
legal_basis:
  - directive: LkSG
description: Minimal LkSG supplier check
inputs:
  supplier_hashes: {type: array, items: hex}
  sanctions_root: {type: hex}
rules:
  - {id: no_sanctions, op: non_membership, lhs: supplier_hashes, rhs: sanctions_root}
"""
GOLDEN_V2_POLICY_HASH = "sha3-256:b98c3db55f874476dc749ea32b70bdf5369a0d7bc5364f236e034f1ddcd94638"
GOLDEN_V2_IR_HASH = "sha3-256:df3a3eeb7c72f6204131397e4b0a4b16235f1e20cc66102153ad6d4ee78f892c"
GOLDEN_V2_IR_LEN = 435
GOLDEN_V1_TEXT = (
    '{"version":"lksg.v1","name":"Test Policy","created_at":"2025-11-06T10:00:00Z",'
    '"constraints":{"require_at_least_one_ubo":true,"supplier_count_max":10},"notes":""}'
)
GOLDEN_V1_HASH = "0x0afcb402e74ff6a11601863fc4ae2f2d756124db71bc703f5889ecefcd371ff4"

_V2_HEAD = 'id: p\nversion: "1.0"\nlegal_basis: [{directive: LkSG}]\ndescription: d\n'
_V2_INPUTS = "inputs: {supplier_hashes: {type: array, items: hex}, sanctions_root: {type: hex}}\n"
_V2_RULE = "  - {id: no_sanctions, op: non_membership, lhs: supplier_hashes, rhs: sanctions_root}\n"
_V1_HEAD = 'version: lksg.v1\nname: Demo\ncreated_at: "2025-10-25T09:00:00Z"\nconstraints:\n'

# scenario → (source, text, mode)
NEGATIVES: dict[str, tuple[str, str, LintMode]] = {
    "yaml_not_mapping": ("list.yml", "- id: p\n- version: 1\n", LintMode.STRICT),
    "yaml_empty_document": ("empty.yml", "# nothing here\n", LintMode.STRICT),
    "yaml_syntax_error": ("broken.yml", _V2_HEAD + "rules:\n  - {id: a, op: eq\n", LintMode.STRICT),
    "yaml_duplicate_key": ("dup.yml", _V2_HEAD + "id: q\n" + _V2_INPUTS + "rules: []\n", LintMode.STRICT),
    "json_syntax_error": ("broken.json", '{"id": "p",\n "version": }\n', LintMode.STRICT),
    "v2_missing_rules": ("norules.yml", _V2_HEAD + _V2_INPUTS, LintMode.STRICT),
    "v2_rule_missing_op": (
        "noop.yml",
        _V2_HEAD + _V2_INPUTS + "rules:\n  - {id: a, lhs: x, rhs: 1}\n",
        LintMode.STRICT,
    ),
    "v2_float_operand": (
        "float.yml",
        _V2_HEAD + _V2_INPUTS + "rules:\n  - {id: a, op: range_min, lhs: x, rhs: 1.5}\n",
        LintMode.STRICT,
    ),
    "v2_version_not_string": ("ver.yml", "id: p\nversion: 1.0\ninputs: {}\nrules: []\n", LintMode.STRICT),
    "v2_unknown_op": (
        "op.yml",
        _V2_HEAD + _V2_INPUTS + "rules:\n  - {id: a, op: invalid_op, lhs: x, rhs: 1}\n",
        LintMode.STRICT,
    ),
    "v2_duplicate_rule_id": ("dupid.yml", _V2_HEAD + _V2_INPUTS + "rules:\n" + _V2_RULE * 2, LintMode.STRICT),
    "v2_missing_legal_basis_strict": (
        "nolb.yml",
        'id: p\nversion: "1.0"\ndescription: d\n' + _V2_INPUTS + "rules:\n" + _V2_RULE,
        LintMode.STRICT,
    ),
    "v2_activation_unknown_rule": (
        "act.yml",
        _V2_HEAD
        + _V2_INPUTS
        + "rules:\n"
        + _V2_RULE
        + "adaptivity:\n  predicates: [{id: on, expr: true}]\n  activations: [{when: on, rules: [ghost]}]\n",
        LintMode.STRICT,
    ),
    "v2_invalid_severity": (
        "sev.yml",
        _V2_HEAD + _V2_INPUTS + "rules:\n" + "  - {id: a, op: eq, lhs: x, rhs: 1, severity: fatal}\n",
        LintMode.STRICT,
    ),
    "v1_supplier_count_max_zero": (
        "v1.yml",
        _V1_HEAD + "  require_at_least_one_ubo: true\n  supplier_count_max: 0\n",
        LintMode.STRICT,
    ),
    "v1_ubo_count_min_zero": (
        "v1.yml",
        _V1_HEAD + "  require_at_least_one_ubo: true\n  supplier_count_max: 5\n  ubo_count_min: 0\n",
        LintMode.STRICT,
    ),
    "v1_unknown_statement_root": (
        "v1.yml",
        _V1_HEAD + "  require_at_least_one_ubo: true\n"
        "  supplier_count_max: 5\n  require_statement_roots: [moon_root]\n",
        LintMode.STRICT,
    ),
    "v1_empty_statement_roots": (
        "v1.yml",
        _V1_HEAD + "  require_at_least_one_ubo: true\n"
        "  supplier_count_max: 5\n  require_statement_roots: []\n",
        LintMode.STRICT,
    ),
    "v1_version_not_lksg": (
        "v1.yml",
        _V1_HEAD.replace("lksg.v1", "v1") + "  require_at_least_one_ubo: true\n  supplier_count_max: 5\n",
        LintMode.STRICT,
    ),
    "v1_blank_name": (
        "v1.yml",
        _V1_HEAD.replace("Demo", '"  "') + "  require_at_least_one_ubo: true\n  supplier_count_max: 5\n",
        LintMode.STRICT,
    ),
    "v1_created_at_not_timestamp": (
        "v1.yml",
        _V1_HEAD.replace("2025-10-25T09:00:00Z", "2025-10-25")
        + "  require_at_least_one_ubo: true\n  supplier_count_max: 5\n",
        LintMode.STRICT,
    ),
    "v1_max_tier_zero": (
        "v1.yml",
        _V1_HEAD + "  require_at_least_one_ubo: true\n  supplier_count_max: 5\n  max_tier: 0\n",
        LintMode.STRICT,
    ),
    "v1_missing_supplier_count_max": (
        "v1.yml",
        _V1_HEAD + "  require_at_least_one_ubo: true\n",
        LintMode.STRICT,
    ),
}

# scenario → (source, text, mode, selector cases [(variables, expected active ids)])
POSITIVES: dict[str, tuple[str, str, LintMode, list[tuple[dict[str, Any], list[str]]]]] = {
    "v2_lksg_golden": ("lksg_v1.policy.yml", GOLDEN_V2_TEXT, LintMode.STRICT, [({}, ["no_sanctions"])]),
    "v2_lksg_golden_as_json": (
        "lksg_v1.policy.json",
        json.dumps(
            {
                "id": "lksg.v1",
                "version": "1.0",
                "legal_basis": [{"directive": "LkSG"}],
                "description": "Minimal LkSG supplier check",
                "unknown_key": "ignored",
                "inputs": {
                    "supplier_hashes": {"type": "array", "items": "hex"},
                    "sanctions_root": {"type": "hex"},
                },
                "rules": [
                    {
                        "id": "no_sanctions",
                        "op": "non_membership",
                        "lhs": "supplier_hashes",
                        "rhs": "sanctions_root",
                    }
                ],
            },
            indent=2,
        ),
        LintMode.STRICT,
        [],
    ),
    "v2_missing_legal_basis_relaxed": (
        "nolb.yml",
        'id: p\nversion: "1.0"\n' + _V2_INPUTS + "rules:\n" + _V2_RULE,
        LintMode.RELAXED,
        [],
    ),
    "v2_demo_example": (
        "examples/lksg_v2.policy.yml",
        (EXAMPLES / "lksg_v2.policy.yml").read_text(encoding="utf-8"),
        LintMode.STRICT,
        [
            (
                {"strict_mode": False, "supplier_count": 5},
                ["at_least_one_ubo", "no_sanctioned_suppliers", "no_sanctioned_ubos", "supplier_count_max"],
            ),
            (
                {"strict_mode": False, "supplier_count": 25},
                [
                    "at_least_one_ubo",
                    "max_tier",
                    "no_sanctioned_suppliers",
                    "no_sanctioned_ubos",
                    "supplier_count_max",
                ],
            ),
            (
                {"strict_mode": True, "supplier_count": 5},
                [
                    "at_least_one_ubo",
                    "max_tier",
                    "no_high_risk_suppliers",
                    "no_sanctioned_suppliers",
                    "no_sanctioned_ubos",
                    "supplier_count_max",
                ],
            ),
        ],
    ),
    "v1_test_policy_golden": ("test_policy.json", GOLDEN_V1_TEXT, LintMode.STRICT, []),
    "v1_demo_example": (
        "examples/policy.lksg.v1.yml",
        (EXAMPLES / "policy.lksg.v1.yml").read_text(encoding="utf-8"),
        LintMode.STRICT,
        [],
    ),
}


def _error(exc: CapError) -> dict[str, Any]:
    out: dict[str, Any] = {"code": exc.code}
    for key in ("field", "line"):
        if key in exc.details:
            out[key] = exc.details[key]
    if isinstance(exc, PolicyLintError):
        out["lint_codes"] = [d.code for d in exc.lints]
    return out


def _negative(source: str, text: str, mode: LintMode) -> dict[str, Any]:
    try:
        compile_policy(load_policy_text(text, source), mode)
    except CapError as exc:
        return {"input": {"source": source, "text": text, "mode": mode.value}, "expected_error": _error(exc)}
    raise AssertionError(f"negative vector {source} compiled")


def _positive(
    source: str, text: str, mode: LintMode, selections: list[tuple[dict[str, Any], list[str]]]
) -> dict:
    compiled = compile_policy(load_policy_text(text, source), mode)
    expected = {
        "policy_canonical": compiled.policy_bytes.decode("utf-8"),
        "policy_hash": compiled.policy_hash,
        "ir_hash": compiled.ir_hash,
        "ir_pretty": compiled.ir_pretty().decode("utf-8"),
        "lints": [d.to_dict() for d in compiled.lints],
        "rule_constraints": compiled.rule_constraints,
        "active_rules": [{"variables": v, "active": active_rule_ids(compiled.ir, v)} for v, _ in selections],
    }
    for (variables, wanted), got in zip(selections, expected["active_rules"], strict=True):
        assert got["active"] == wanted, (source, variables, got)
    return {"input": {"source": source, "text": text, "mode": mode.value}, "expected": expected}


def _check_goldens(out: dict[str, Any]) -> None:
    for name in ("v2_lksg_golden", "v2_lksg_golden_as_json"):
        exp = out[f"policy/{name}.json"]["expected"]
        assert exp["policy_hash"] == GOLDEN_V2_POLICY_HASH, exp["policy_hash"]
        assert exp["ir_hash"] == GOLDEN_V2_IR_HASH, exp["ir_hash"]
        assert len(exp["ir_pretty"].encode()) == GOLDEN_V2_IR_LEN
    assert out["policy/v1_test_policy_golden.json"]["expected"]["policy_hash"] == GOLDEN_V1_HASH


def _ir_vectors(golden_ir: str) -> dict[str, Any]:
    tampered = golden_ir.replace('"no_sanctions"', '"no_sanctionz"')
    bad_hash = golden_ir.replace(GOLDEN_V2_IR_HASH, "sha3-256:" + "0" * 64)
    out: dict[str, Any] = {
        "policy/ir_golden_loads.json": {
            "input": {"ir": golden_ir},
            "expected": {"ir_hash": load_ir(golden_ir.encode()).ir_hash},
        }
    }
    for name, text in (
        ("ir_rule_id_tampered", tampered),
        ("ir_hash_replaced", bad_hash),
        ("ir_not_json", golden_ir[:-1]),
    ):
        try:
            load_ir(text.encode(), "ir.json")
        except CapError as exc:
            out[f"policy/{name}.json"] = {"input": {"ir": text}, "expected_error": _error(exc)}
        else:
            raise AssertionError(f"{name} loaded")
    return out


def vectors() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (source, text, mode, selections) in POSITIVES.items():
        out[f"policy/{name}.json"] = _positive(source, text, mode, selections)
    for name, (source, text, mode) in NEGATIVES.items():
        out[f"policy/{name}.json"] = _negative(source, text, mode)
    _check_goldens(out)
    out.update(_ir_vectors(out["policy/v2_lksg_golden.json"]["expected"]["ir_pretty"]))
    return out
