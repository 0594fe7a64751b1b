"""The evaluator and the enforcer at their edges: what each rule says, delegates and counts.

Each case kills a mutant of core/rules.py or core/enforce.py (``make mutation MODULE=core/rules.py``).
"""

import pytest

from core.enforce import Violation, verdict, violations_of, worst
from core.modes import CheckStatus, EnforcementMode
from core.policy.ir import IrRule
from core.rules import ListLength, MissingInputError, Outcome, Severity, evaluate_rule, evaluate_rules


def R(id, op, lhs, rhs, severity=None):
    return IrRule(id=id, op=op, lhs=lhs, rhs=rhs, severity=severity)


class KeySetCtx:
    """A context whose ``sanctions_root`` is a committed key set: non-membership goes to ``screen``."""

    def __init__(self, passed=True, **values):
        self.values = values
        self.passed = passed
        self.screened = []

    def lookup(self, name):
        if name not in self.values:
            raise MissingInputError(f"no input {name}")
        return self.values[name]

    def is_key_set(self, name):
        return name == "sanctions_root"

    def screen(self, lhs, rhs, claimed):
        self.screened.append((lhs, rhs, claimed))
        return self.passed, f"screened {lhs}", {"items": 2}


V = {"var": "x"}


@pytest.mark.parametrize(
    ("op", "x", "rhs", "message"),
    [
        pytest.param("range_min", 2, 1, "x range_min 1 holds", id="holds"),
        pytest.param("range_max", 11, 10, "x range_max 10 violated", id="violated"),
        pytest.param("eq", "DE", "DE", "x eq 'DE' holds", id="literal_repr"),
    ],
)
def test_message_names_operands_op_and_verdict(op, x, rhs, message):
    result = evaluate_rule(R("r1", op, V, rhs), KeySetCtx(x=x))
    assert result.message == message
    assert (result.rule_id, result.op) == ("r1", op)


def test_variable_on_both_sides_is_resolved_and_described():
    result = evaluate_rule(R("r", "range_min", V, {"var": "y"}), KeySetCtx(x=3, y=5))
    assert result.result is Outcome.FAIL
    assert result.message == "x range_min y violated"
    assert result.evidence == {"lhs": 3, "rhs": 5}


def test_non_membership_against_a_key_set_is_delegated_with_the_claimed_evidence():
    ctx = KeySetCtx(passed=False)
    claimed = {"items": []}
    result = evaluate_rule(
        R("s", "non_membership", {"var": "suppliers"}, {"var": "sanctions_root"}), ctx, claimed
    )
    assert ctx.screened == [("suppliers", "sanctions_root", claimed)]
    assert result.result is Outcome.FAIL
    assert result.message == "screened suppliers"
    assert result.evidence == {"items": 2}
    assert result.severity is Severity.CRITICAL


def test_passing_screen_is_a_pass():
    ctx = KeySetCtx(passed=True)
    result = evaluate_rule(R("s", "non_membership", {"var": "suppliers"}, {"var": "sanctions_root"}), ctx)
    assert result.result is Outcome.PASS
    assert ctx.screened == [("suppliers", "sanctions_root", None)]


def test_non_membership_against_a_plain_list_is_compared_not_screened():
    ctx = KeySetCtx(countries=["DE", "IR"], banned=["IR"])
    result = evaluate_rule(R("c", "non_membership", {"var": "countries"}, {"var": "banned"}), ctx)
    assert ctx.screened == []
    assert result.result is Outcome.FAIL
    assert result.evidence == {"lhs": {"len": 2}, "rhs": {"len": 1}}


def test_non_membership_with_a_literal_left_side_is_not_screened():
    ctx = KeySetCtx(sanctions_root=["IR"])
    result = evaluate_rule(R("c", "non_membership", "IR", {"var": "sanctions_root"}), ctx)
    assert ctx.screened == []
    assert result.result is Outcome.FAIL


@pytest.mark.parametrize(
    "operand",
    [
        pytest.param({"var": "x", "extra": 1}, id="extra_key"),
        pytest.param({"var": 5}, id="non_string_name"),
    ],
)
def test_only_an_exact_var_mapping_names_a_variable(operand):
    """Anything else is a literal: it is not looked up (so a missing input cannot be conjured)."""
    result = evaluate_rule(R("r", "eq", operand, operand), KeySetCtx())
    assert result.result is Outcome.PASS
    assert result.evidence == {"lhs": operand, "rhs": operand}


@pytest.mark.parametrize(
    ("x", "found"),
    [pytest.param(True, "bool", id="bool_is_not_a_number"), pytest.param("7", "str", id="string")],
)
def test_range_on_a_non_number_is_an_error_naming_the_side(x, found):
    result = evaluate_rule(R("r", "range_min", V, 1), KeySetCtx(x=x))
    assert result.result is Outcome.ERROR
    assert result.message == "cannot evaluate: lhs is not a number or list"
    assert result.evidence == {}


@pytest.mark.parametrize("op", ["range_min", "range_max"])
def test_range_with_a_non_number_bound_names_the_right_side(op):
    result = evaluate_rule(R("r", op, V, "ten"), KeySetCtx(x=1))
    assert result.message == "cannot evaluate: rhs is not a number or list"


@pytest.mark.parametrize("op", ["range_min", "range_max"])
def test_range_on_a_non_number_names_the_left_side(op):
    result = evaluate_rule(R("r", op, V, 1), KeySetCtx(x="ten"))
    assert result.message == "cannot evaluate: lhs is not a number or list"


def test_membership_needs_a_list_on_the_right_message():
    result = evaluate_rule(R("r", "non_membership", V, "IR"), KeySetCtx(x="IR"))
    assert result.result is Outcome.ERROR
    assert result.message == "cannot evaluate: non_membership needs a list on the right"


@pytest.mark.parametrize(
    ("op", "x", "rhs", "outcome"),
    [
        pytest.param("membership", ["DE", "FR"], ["DE", "FR"], Outcome.PASS, id="membership_list_all"),
        pytest.param("membership", "PL", ["DE"], Outcome.FAIL, id="membership_scalar_miss"),
        pytest.param("membership", [], ["DE"], Outcome.PASS, id="membership_empty_list"),
        pytest.param("range_max", ("a", "b"), 2, Outcome.PASS, id="range_on_tuple"),
        pytest.param("range_min", ListLength(2), ["a", "b", "c"], Outcome.FAIL, id="range_against_list"),
        pytest.param("eq", "1", 1, Outcome.FAIL, id="eq_needs_same_type"),
    ],
)
def test_more_op_cells(op, x, rhs, outcome):
    assert evaluate_rule(R("r", op, V, rhs), KeySetCtx(x=x)).result is outcome


def test_non_membership_against_a_tuple_from_the_context():
    ctx = KeySetCtx(x="PL", banned=("IR",))
    assert evaluate_rule(R("r", "non_membership", V, {"var": "banned"}), ctx).result is Outcome.PASS
    ctx = KeySetCtx(x="IR", banned=("IR",))
    assert evaluate_rule(R("r", "non_membership", V, {"var": "banned"}), ctx).result is Outcome.FAIL


def test_list_length_evidence_is_the_length_only():
    result = evaluate_rule(R("r", "range_max", V, 5), KeySetCtx(x=ListLength(4)))
    assert result.evidence == {"lhs": {"len": 4}, "rhs": 5}


def test_evaluate_rules_keeps_rule_order():
    rules = [R("a", "eq", V, 1), R("b", "eq", V, 2), R("c", "range_min", {"var": "gone"}, 0)]
    results = evaluate_rules(rules, KeySetCtx(x=1))
    assert [(r.rule_id, r.result) for r in results] == [
        ("a", Outcome.PASS),
        ("b", Outcome.FAIL),
        ("c", Outcome.ERROR),
    ]


# --- enforcer -----------------------------------------------------------------------------------


def test_violations_carry_the_rule_and_default_to_its_id_as_constraint():
    failed = evaluate_rule(R("r9", "range_max", V, 1, "low"), KeySetCtx(x=3))
    passed = evaluate_rule(R("ok", "range_max", V, 5), KeySetCtx(x=3))
    (v,) = violations_of([passed, failed])
    assert v == Violation(
        constraint="r9",
        rule_id="r9",
        severity=Severity.LOW,
        message="x range_max 1 violated",
        evidence={"lhs": 3, "rhs": 1},
    )
    (mapped,) = violations_of([failed], {"other": "x"})
    assert mapped.constraint == "r9"


def test_a_failed_low_rule_stays_low_only_an_error_is_raised():
    failed = evaluate_rule(R("r", "range_max", V, 1, "low"), KeySetCtx(x=3))
    errored = evaluate_rule(R("e", "range_max", {"var": "gone"}, 1, "low"), KeySetCtx())
    high = evaluate_rule(R("h", "range_max", {"var": "gone"}, 1, "high"), KeySetCtx())
    assert [v.severity for v in violations_of([failed, errored, high])] == [
        Severity.LOW,
        Severity.HIGH,
        Severity.HIGH,
    ]
    assert verdict(violations_of([failed]), EnforcementMode.RELAXED) is CheckStatus.WARN
    assert verdict(violations_of([errored]), EnforcementMode.RELAXED) is CheckStatus.FAIL


def test_worst_of_nothing_is_ok_and_fail_beats_warn():
    assert worst([]) is CheckStatus.OK
    assert worst([CheckStatus.WARN, CheckStatus.FAIL, CheckStatus.OK]) is CheckStatus.FAIL
    assert worst([CheckStatus.OK, CheckStatus.WARN]) is CheckStatus.WARN
