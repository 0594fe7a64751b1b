"""Policy v1: the original's hash vector, validation failures, and constraint → IR rule compilation."""

from pathlib import Path

import pytest

from core.errors import InvalidInputError
from core.policy import (
    PolicyV1,
    compile_policy,
    load_policy_file,
    load_policy_text,
    policy_v1_hash,
    v1_to_ir_rules,
)
from core.policy.v1 import policy_v1_bytes, rule_constraint

GOLDEN_TEXT = (
    '{"version":"lksg.v1","name":"Test Policy","created_at":"2025-11-06T10:00:00Z",'
    '"constraints":{"require_at_least_one_ubo":true,"supplier_count_max":10},"notes":""}'
)
GOLDEN_HASH = "0x0afcb402e74ff6a11601863fc4ae2f2d756124db71bc703f5889ecefcd371ff4"
HEAD = 'version: lksg.v1\nname: Demo\ncreated_at: "2025-10-25T09:00:00Z"\n'


def _v1(**constraints) -> PolicyV1:
    base = {"require_at_least_one_ubo": True, "supplier_count_max": 10}
    return PolicyV1.model_validate(
        {
            "version": "lksg.v1",
            "name": "P",
            "created_at": "2025-10-25T09:00:00Z",
            "constraints": base | constraints,
        }
    )


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(GOLDEN_TEXT, id="json"),
        pytest.param(
            "version: lksg.v1\nname: Test Policy\ncreated_at: 2025-11-06T10:00:00Z\n"
            "constraints:\n  require_at_least_one_ubo: true\n  supplier_count_max: 10\n",
            id="yaml_unquoted_timestamp_notes_defaulted",
        ),
    ],
)
def test_golden_v1_hash(text):
    policy = load_policy_text(text)
    assert isinstance(policy, PolicyV1)
    assert policy_v1_bytes(policy).decode() == GOLDEN_TEXT
    assert policy_v1_hash(policy) == GOLDEN_HASH
    assert compile_policy(policy).policy_hash == GOLDEN_HASH


def test_example_policy_loads_with_all_constraints():
    policy = load_policy_file(Path(__file__).resolve().parents[2] / "examples" / "policy.lksg.v1.yml")
    assert isinstance(policy, PolicyV1)
    assert policy.name == "LkSG Demo Policy"
    c = policy.constraints
    assert (c.ubo_count_min, c.require_statement_roots, c.max_high_risk_suppliers, c.max_tier) == (
        1,
        ("sanctions_root",),
        0,
        3,
    )
    assert c.no_sanctioned_suppliers and c.no_sanctioned_ubos


@pytest.mark.parametrize(
    ("constraints", "field"),
    [
        pytest.param(
            "  require_at_least_one_ubo: true\n  supplier_count_max: 0\n",
            "constraints.supplier_count_max",
            id="supplier_count_max_zero",
        ),
        pytest.param(
            "  require_at_least_one_ubo: true\n  supplier_count_max: 4294967296\n",
            "constraints.supplier_count_max",
            id="supplier_count_max_over_u32",
        ),
        pytest.param(
            "  require_at_least_one_ubo: true\n  supplier_count_max: 1\n  ubo_count_min: 0\n",
            "constraints.ubo_count_min",
            id="ubo_count_min_zero",
        ),
        pytest.param(
            "  require_at_least_one_ubo: true\n  supplier_count_max: 1\n  require_statement_roots: []\n",
            "constraints.require_statement_roots",
            id="statement_roots_empty",
        ),
        pytest.param(
            "  require_at_least_one_ubo: true\n  supplier_count_max: 1\n  require_statement_roots: [x]\n",
            "constraints.require_statement_roots",
            id="statement_root_unknown",
        ),
        pytest.param(
            "  require_at_least_one_ubo: true\n  supplier_count_max: 1\n"
            "  require_statement_roots: [sanctions_root, sanctions_root]\n",
            "constraints.require_statement_roots",
            id="statement_root_twice",
        ),
        pytest.param(
            "  require_at_least_one_ubo: true\n  supplier_count_max: 1\n  max_high_risk_suppliers: -1\n",
            "constraints.max_high_risk_suppliers",
            id="max_high_risk_negative",
        ),
        pytest.param(
            "  require_at_least_one_ubo: true\n  supplier_count_max: 1\n  max_tier: 0\n",
            "constraints.max_tier",
            id="max_tier_zero",
        ),
        pytest.param(
            "  require_at_least_one_ubo: yes\n  supplier_count_max: 1\n",
            "constraints.require_at_least_one_ubo",
            id="yaml11_yes_is_not_bool",
        ),
        pytest.param(
            "  require_at_least_one_ubo: true\n  supplier_count_max: '10'\n",
            "constraints.supplier_count_max",
            id="count_as_string",
        ),
        pytest.param(
            "  require_at_least_one_ubo: true\n  supplier_count_max: 10.0\n",
            "constraints.supplier_count_max",
            id="count_as_float",
        ),
        pytest.param(
            "  require_at_least_one_ubo: true\n", "constraints.supplier_count_max", id="count_missing"
        ),
    ],
)
def test_invalid_constraints_name_the_field(constraints, field):
    with pytest.raises(InvalidInputError) as info:
        load_policy_text(HEAD + "constraints:\n" + constraints, "p.yml")
    assert info.value.details["field"] == field
    assert info.value.details["file"] == "p.yml"
    assert info.value.details["line"] >= 4
    assert info.value.details["expected"]


@pytest.mark.parametrize(
    ("header", "field"),
    [
        pytest.param(HEAD.replace("lksg.v1", "v1"), "version", id="version_prefix"),
        pytest.param(HEAD.replace("Demo", '" "'), "name", id="name_blank"),
        pytest.param(HEAD.replace("2025-10-25T09:00:00Z", "2025-10-25"), "created_at", id="created_at_no_T"),
        pytest.param(HEAD.replace("name: Demo\n", ""), "name", id="name_missing"),
    ],
)
def test_invalid_header_fields(header, field):
    text = header + "constraints:\n  require_at_least_one_ubo: true\n  supplier_count_max: 1\n"
    with pytest.raises(InvalidInputError) as info:
        load_policy_text(text, "p.yml")
    assert info.value.details["field"] == field


def _rule(rule_id, op, var, rhs, severity, rhs_var=None):
    return {
        "id": rule_id,
        "op": op,
        "lhs": {"var": var},
        "rhs": {"var": rhs_var} if rhs_var else rhs,
        "severity": severity,
    }


BASE = [
    _rule("require_at_least_one_ubo", "range_min", "ubo_count", 1, "high"),
    _rule("supplier_count_max", "range_max", "supplier_count", 10, "medium"),
]


@pytest.mark.parametrize(
    ("constraints", "rules"),
    [
        pytest.param({}, BASE, id="minimal"),
        pytest.param({"require_at_least_one_ubo": False}, BASE[1:], id="ubo_not_required"),
        pytest.param(
            {"ubo_count_min": 2},
            [*BASE, _rule("ubo_count_min", "range_min", "ubo_count", 2, "medium")],
            id="ubo_count_min",
        ),
        pytest.param(
            {"require_statement_roots": ["sanctions_root", "jurisdiction_root"]},
            [
                *BASE,
                _rule("require_statement_root_sanctions_root", "eq", "sanctions_root_present", True, "high"),
                _rule(
                    "require_statement_root_jurisdiction_root",
                    "eq",
                    "jurisdiction_root_present",
                    True,
                    "high",
                ),
            ],
            id="statement_roots",
        ),
        pytest.param(
            {"no_sanctioned_suppliers": True},
            [
                *BASE,
                _rule(
                    "no_sanctioned_suppliers",
                    "non_membership",
                    "supplier_hashes",
                    None,
                    "critical",
                    rhs_var="sanctions_root",
                ),
            ],
            id="no_sanctioned_suppliers",
        ),
        pytest.param(
            {"no_sanctioned_ubos": True},
            [
                *BASE,
                _rule(
                    "no_sanctioned_ubos",
                    "non_membership",
                    "ubo_hashes",
                    None,
                    "critical",
                    rhs_var="sanctions_root",
                ),
            ],
            id="no_sanctioned_ubos",
        ),
        pytest.param({"no_sanctioned_ubos": False}, BASE, id="no_sanctioned_ubos_false_adds_nothing"),
        pytest.param(
            {"max_high_risk_suppliers": 0},
            [*BASE, _rule("max_high_risk_suppliers", "range_max", "high_risk_supplier_count", 0, "medium")],
            id="max_high_risk_suppliers",
        ),
        pytest.param(
            {"max_tier": 3},
            [*BASE, _rule("max_tier", "range_max", "max_supplier_tier", 3, "high")],
            id="max_tier",
        ),
    ],
)
def test_v1_constraint_compiles_to_rules(constraints, rules):
    assert [r.model_dump(mode="json") for r in v1_to_ir_rules(_v1(**constraints))] == rules


def test_v1_compile_sorts_rules_and_maps_constraints():
    compiled = compile_policy(_v1(require_statement_roots=["jurisdiction_root"], max_tier=2))
    ids = [r.id for r in compiled.ir.rules]
    assert ids == sorted(ids)
    assert compiled.policy_id == "P"
    assert compiled.rule_constraints["require_statement_root_jurisdiction_root"] == "require_statement_roots"
    assert compiled.rule_constraints["max_tier"] == "max_tier"
    assert b"constraint" not in compiled.ir_bytes()


@pytest.mark.parametrize(
    ("rule_id", "constraint"),
    [
        pytest.param("supplier_count_max", "supplier_count_max", id="plain"),
        pytest.param("require_statement_root_sanctions_root", "require_statement_roots", id="statement_root"),
        pytest.param("require_statement_root_moon", None, id="unknown_root"),
        pytest.param("no_sanctions", None, id="v2_rule"),
    ],
)
def test_rule_constraint(rule_id, constraint):
    assert rule_constraint(rule_id) == constraint
