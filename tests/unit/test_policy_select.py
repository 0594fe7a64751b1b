"""The selector: which rules are active for given variables (original §5.1)."""

import pytest

from core.errors import InvalidInputError
from core.policy import (
    Activation,
    Adaptivity,
    IrRule,
    Op,
    Predicate,
    active_rule_ids,
    build_ir,
    evaluate_predicate,
)

HASH = "sha3-256:" + "a" * 64


def _ir(predicates=None, activations=()):
    rules = [IrRule(id=i, op=Op.EQ, lhs={"var": "x"}, rhs=1) for i in ("c", "a", "b")]
    adaptivity = None
    if predicates is not None:
        adaptivity = Adaptivity(
            predicates=[Predicate(id=k, expr=v) for k, v in predicates.items()],
            activations=[Activation(when=w, rules=r) for w, r in activations],
        )
    return build_ir("p", HASH, rules, adaptivity)


@pytest.mark.parametrize(
    ("ir", "variables", "expected"),
    [
        pytest.param(_ir(), {}, ["a", "b", "c"], id="no_adaptivity_all_rules_in_ir_order"),
        pytest.param(_ir({"on": True}, [("on", ["c", "a"])]), {}, ["a", "c"], id="json_true_sorted"),
        pytest.param(_ir({"off": False}, [("off", ["c"])]), {}, [], id="json_false"),
        pytest.param(
            _ir({"t": "true", "f": "false"}, [("t", ["b"]), ("f", ["c"])]), {}, ["b"], id="string_bools"
        ),
        pytest.param(_ir({"s": "strict"}, [("s", ["a"])]), {"strict": True}, ["a"], id="bool_variable_true"),
        pytest.param(_ir({"s": "strict"}, [("s", ["a"])]), {"strict": False}, [], id="bool_variable_false"),
        pytest.param(
            _ir({"big": {"func": "gt", "args": ["n", 20]}}, [("big", ["b"])]), {"n": 25}, ["b"], id="gt"
        ),
        pytest.param(
            _ir({"small": {"func": "lt", "args": ["n", "m"]}}, [("small", ["b"])]),
            {"n": 1, "m": 2},
            ["b"],
            id="lt_two_variables",
        ),
        pytest.param(
            _ir({"e": {"func": "eq", "args": [{"k": 1}, {"k": 1}]}}, [("e", ["a"])]),
            {},
            ["a"],
            id="eq_raw_json",
        ),
        pytest.param(
            _ir({"e": {"func": "eq", "args": [1, True]}}, [("e", ["a"])]), {}, [], id="eq_int_is_not_bool"
        ),
        pytest.param(
            _ir({"on": True, "also": True}, [("on", ["a", "b"]), ("also", ["b"])]),
            {},
            ["a", "b"],
            id="deduplicated",
        ),
    ],
)
def test_active_rule_ids(ir, variables, expected):
    assert active_rule_ids(ir, variables) == expected


@pytest.mark.parametrize(
    ("ir", "variables"),
    [
        pytest.param(_ir({"on": True}, [("ghost", ["a"])]), {}, id="unknown_predicate"),
        pytest.param(_ir({"s": "strict"}, [("s", ["a"])]), {}, id="missing_variable"),
        pytest.param(_ir({"s": "strict"}, [("s", ["a"])]), {"strict": 1}, id="variable_not_bool"),
        pytest.param(
            _ir({"g": {"func": "gt", "args": ["n", 1]}}, [("g", ["a"])]), {"n": "x"}, id="not_numeric"
        ),
        pytest.param(
            _ir({"g": {"func": "gt", "args": [True, 1]}}, [("g", ["a"])]), {}, id="bool_is_not_numeric"
        ),
        pytest.param(_ir({"g": {"func": "gte", "args": [1, 1]}}, [("g", ["a"])]), {}, id="unknown_func"),
        pytest.param(_ir({"g": {"func": "lt", "args": [1]}}, [("g", ["a"])]), {}, id="wrong_arity"),
        pytest.param(_ir({"g": 7}, [("g", ["a"])]), {}, id="unsupported_form"),
    ],
)
def test_selector_errors(ir, variables):
    with pytest.raises(InvalidInputError):
        active_rule_ids(ir, variables)


def test_evaluate_predicate_names_the_variable():
    with pytest.raises(InvalidInputError) as info:
        evaluate_predicate("strict_mode", {}, "p")
    assert info.value.details["field"] == "variables.strict_mode"
