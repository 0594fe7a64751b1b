"""Compile to IR v1: the original's golden IR byte for byte, lint gating, load_ir, determinism."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import IntegrityError, InvalidInputError
from core.policy import (
    IrRule,
    LintMode,
    Op,
    PolicyLintError,
    PolicyV2,
    Severity,
    build_ir,
    compile_policy,
    effective_severity,
    load_ir,
    load_policy_text,
)
from tests.vectorgen.gen_policy import GOLDEN_V2_TEXT

REFERENCE = GOLDEN_V2_TEXT  # the original's reference policy, one copy in the vector generator
POLICY_HASH = "sha3-256:b98c3db55f874476dc749ea32b70bdf5369a0d7bc5364f236e034f1ddcd94638"
IR_HASH = "sha3-256:df3a3eeb7c72f6204131397e4b0a4b16235f1e20cc66102153ad6d4ee78f892c"
GOLDEN_IR = {
    "ir_version": "1.0",
    "policy_id": "lksg.v1",
    "policy_hash": POLICY_HASH,
    "rules": [
        {
            "id": "no_sanctions",
            "op": "non_membership",
            "lhs": {"var": "supplier_hashes"},
            "rhs": {"var": "sanctions_root"},
        }
    ],
    "ir_hash": IR_HASH,
}


def test_reference_policy_compiles_to_golden_ir():
    compiled = compile_policy(load_policy_text(REFERENCE, "lksg_v1.policy.yml"))
    assert compiled.policy_id == "lksg.v1"
    assert compiled.policy_hash == POLICY_HASH
    assert compiled.ir_hash == compiled.ir.ir_hash == IR_HASH
    pretty = compiled.ir_pretty()
    assert pretty == json.dumps(GOLDEN_IR, indent=2).encode()
    assert len(pretty) == 435 and not pretty.endswith(b"\n")
    assert compiled.lints == ()


def test_ir_copies_severity_and_adaptivity_unchanged():
    text = REFERENCE.replace("rhs: sanctions_root}", "rhs: sanctions_root, severity: high}") + (
        "  - {id: a_first, op: eq, lhs: flag, rhs: true}\n"
        "adaptivity:\n  predicates: [{id: z, expr: true}, {id: a, expr: flag}]\n"
        "  activations: [{when: z, rules: [no_sanctions, a_first]}]\n"
    )
    ir = compile_policy(load_policy_text(text)).ir
    assert [r.id for r in ir.rules] == ["a_first", "no_sanctions"]
    assert ir.rules[1].severity is Severity.HIGH and ir.rules[0].severity is None
    assert [p.id for p in ir.adaptivity.predicates] == ["z", "a"]
    assert ir.adaptivity.activations[0].rules == ("no_sanctions", "a_first")
    assert b'"severity"' in compile_policy(load_policy_text(text)).ir_bytes()


@pytest.mark.parametrize(
    ("edit", "codes"),
    [
        pytest.param(lambda t: t.replace("op: non_membership", "op: invalid_op"), ["E2001"], id="invalid_op"),
        pytest.param(
            lambda t: t + "  - {id: no_sanctions, op: eq, lhs: a, rhs: 1}\n", ["E1003"], id="duplicate_id"
        ),
        pytest.param(
            lambda t: t.replace("legal_basis:\n  - directive: LkSG\n", ""),
            ["E1002"],
            id="missing_legal_basis",
        ),
    ],
)
def test_lint_errors_block_compile(edit, codes):
    policy = load_policy_text(edit(REFERENCE))
    with pytest.raises(PolicyLintError) as info:
        compile_policy(policy)
    assert info.value.code == "policy_lint_failed"
    assert isinstance(info.value, InvalidInputError)
    assert [d["code"] for d in info.value.details["diagnostics"]] == codes


def test_relaxed_mode_compiles_missing_legal_basis_with_warning():
    policy = load_policy_text(REFERENCE.replace("legal_basis:\n  - directive: LkSG\n", ""))
    compiled = compile_policy(policy, LintMode.RELAXED)
    assert [(d.code, d.level.value) for d in compiled.lints] == [("E1002", "warning")]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(lambda ir: ir, id="pretty"),
        pytest.param(lambda ir: json.dumps(json.loads(ir), separators=(",", ":")).encode(), id="compact"),
    ],
)
def test_load_ir_roundtrip(data):
    compiled = compile_policy(load_policy_text(REFERENCE))
    assert load_ir(data(compiled.ir_pretty())) == compiled.ir


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        pytest.param(lambda d: d | {"policy_id": "other"}, IntegrityError, id="content_changed"),
        pytest.param(lambda d: d | {"ir_hash": "sha3-256:" + "0" * 64}, IntegrityError, id="hash_replaced"),
        pytest.param(lambda d: d | {"ir_hash": "0x" + "0" * 64}, InvalidInputError, id="hash_wrong_form"),
        pytest.param(lambda d: d | {"ir_version": "2.0"}, InvalidInputError, id="ir_version"),
        pytest.param(
            lambda d: d | {"rules": [d["rules"][0] | {"op": "threshold"}]}, InvalidInputError, id="unknown_op"
        ),
        pytest.param(lambda d: d | {"rules": d["rules"] * 2}, InvalidInputError, id="duplicate_rule_ids"),
        pytest.param(
            lambda d: {k: v for k, v in d.items() if k != "rules"}, InvalidInputError, id="missing_rules"
        ),
    ],
)
def test_load_ir_rejects(mutate, error):
    with pytest.raises(error):
        load_ir(json.dumps(mutate(GOLDEN_IR)).encode())


@pytest.mark.parametrize(
    ("op", "severity", "expected"),
    [
        pytest.param(Op.NON_MEMBERSHIP, None, Severity.CRITICAL, id="non_membership_default"),
        pytest.param(Op.EQ, None, Severity.HIGH, id="other_default"),
        pytest.param(Op.NON_MEMBERSHIP, Severity.LOW, Severity.LOW, id="explicit_wins"),
    ],
)
def test_effective_severity(op, severity, expected):
    assert effective_severity(IrRule(id="r", op=op, lhs="a", rhs=1, severity=severity)) == expected


_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_äß0123456789", min_size=1, max_size=12)
_operand = st.recursive(
    st.one_of(st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def _policies(draw):
    ids = draw(st.lists(_ids, min_size=1, max_size=6, unique=True))
    rules = [
        {
            "id": i,
            "op": draw(st.sampled_from([o.value for o in Op])),
            "lhs": draw(_operand),
            "rhs": draw(_operand),
            **({"severity": draw(st.sampled_from(list(Severity))).value} if draw(st.booleans()) else {}),
        }
        for i in ids
    ]
    inputs = draw(
        st.dictionaries(_ids, st.fixed_dictionaries({"type": st.sampled_from(["hex", "array"])}), max_size=4)
    )
    return {
        "id": draw(_ids),
        "version": "1.0",
        "legal_basis": [{"directive": "LkSG"}],
        "description": "d",
        "inputs": inputs,
        "rules": rules,
    }, draw(st.permutations(range(len(rules))))


@settings(max_examples=60, deadline=None)
@given(_policies())
def test_compile_is_deterministic_and_rule_order_free(case):
    data, order = case
    first = compile_policy(PolicyV2.model_validate(data))
    again = compile_policy(PolicyV2.model_validate(json.loads(json.dumps(data))))
    assert first.ir_pretty() == again.ir_pretty() and first.ir_hash == again.ir_hash
    shuffled = compile_policy(PolicyV2.model_validate(data | {"rules": [data["rules"][i] for i in order]}))
    assert shuffled.ir.rules == first.ir.rules
    same_policy = build_ir(first.policy_id, first.policy_hash, list(shuffled.ir.rules))
    assert same_policy.ir_hash == first.ir_hash
    assert load_ir(first.ir_pretty()) == first.ir
