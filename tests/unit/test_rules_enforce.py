"""The evaluator (every op, fail-closed) and the enforcer's mode × severity matrix (every cell)."""

import pytest
from pydantic import ValidationError

from core.enforce import Violation, verdict, violation_status, violations_of
from core.modes import CheckStatus, EnforcementMode
from core.policy.ir import IrRule
from core.rules import ListLength, MissingInputError, Outcome, Severity, evaluate_rule


def R(id, op, lhs, rhs, severity=None):
    return IrRule(id=id, op=op, lhs=lhs, rhs=rhs, severity=severity)


class Ctx:
    def __init__(self, **values):
        self.values = values

    def lookup(self, name):
        if name not in self.values:
            raise MissingInputError(f"no {name}")
        return self.values[name]

    def is_key_set(self, name):
        return False

    def screen(self, lhs, rhs, claimed):
        raise AssertionError("not a key set")


V = {"var": "x"}


@pytest.mark.parametrize(
    ("op", "x", "rhs", "outcome"),
    [
        pytest.param("eq", 3, 3, Outcome.PASS, id="eq_holds"),
        pytest.param("eq", 3, 4, Outcome.FAIL, id="eq_violated"),
        pytest.param("eq", True, 1, Outcome.FAIL, id="eq_bool_is_not_int"),
        pytest.param("eq", True, True, Outcome.PASS, id="eq_bool"),
        pytest.param("range_min", 2, 1, Outcome.PASS, id="range_min_holds"),
        pytest.param("range_min", 1, 1, Outcome.PASS, id="range_min_boundary"),
        pytest.param("range_min", 0, 1, Outcome.FAIL, id="range_min_violated"),
        pytest.param("range_max", 10, 10, Outcome.PASS, id="range_max_boundary"),
        pytest.param("range_max", 11, 10, Outcome.FAIL, id="range_max_violated"),
        pytest.param("range_min", ["a", "b"], 2, Outcome.PASS, id="range_on_list_uses_length"),
        pytest.param("range_max", ListLength(3), 2, Outcome.FAIL, id="range_on_list_length"),
        pytest.param("membership", "DE", ["DE", "FR"], Outcome.PASS, id="membership_scalar"),
        pytest.param("membership", ["DE", "PL"], ["DE", "FR"], Outcome.FAIL, id="membership_list_partial"),
        pytest.param("non_membership", ["DE", "PL"], ["IR", "KP"], Outcome.PASS, id="non_membership_plain"),
        pytest.param("non_membership", ["DE", "IR"], ["IR", "KP"], Outcome.FAIL, id="non_membership_hit"),
        pytest.param("range_min", "ten", 1, Outcome.ERROR, id="range_on_string_fails_closed"),
        pytest.param("membership", "DE", "DE", Outcome.ERROR, id="membership_needs_list"),
    ],
)
def test_ops(op, x, rhs, outcome):
    assert evaluate_rule(R("r", op, V, rhs), Ctx(x=x)).result is outcome


def test_unknown_op_cannot_reach_the_evaluator():
    with pytest.raises(ValidationError):
        R("r", "bogus", 1, 1)


def test_missing_input_is_an_error_result_not_a_pass():
    result = evaluate_rule(R("r", "range_min", {"var": "absent"}, 1), Ctx())
    assert result.result is Outcome.ERROR and "absent" in result.message


def test_evidence_discloses_lists_only_by_length():
    result = evaluate_rule(R("r", "range_max", V, 5), Ctx(x=["secret-a", "secret-b"]))
    assert result.evidence == {"lhs": {"len": 2}, "rhs": 5}
    assert "secret" not in str(result.model_dump())


@pytest.mark.parametrize(
    ("op", "severity", "expected"),
    [
        pytest.param("non_membership", None, Severity.CRITICAL, id="non_membership_default_critical"),
        pytest.param("eq", None, Severity.HIGH, id="others_default_high"),
        pytest.param("range_max", "medium", Severity.MEDIUM, id="explicit_severity"),
    ],
)
def test_default_severities(op, severity, expected):
    assert evaluate_rule(R("r", op, 1, [1], severity), Ctx()).severity is expected


S, M = EnforcementMode.STRICT, EnforcementMode.RELAXED
A = EnforcementMode.AUDIT
F, W = CheckStatus.FAIL, CheckStatus.WARN
MATRIX = [
    (S, Severity.CRITICAL, F),
    (S, Severity.HIGH, F),
    (S, Severity.MEDIUM, F),
    (S, Severity.LOW, F),
    (M, Severity.CRITICAL, F),
    (M, Severity.HIGH, F),
    (M, Severity.MEDIUM, W),
    (M, Severity.LOW, W),
    (A, Severity.CRITICAL, W),
    (A, Severity.HIGH, W),
    (A, Severity.MEDIUM, W),
    (A, Severity.LOW, W),
]


@pytest.mark.parametrize(
    ("mode", "severity", "status"), MATRIX, ids=[f"{m.value}-{s.value}" for m, s, _ in MATRIX]
)
def test_mode_severity_matrix(mode, severity, status):
    assert violation_status(severity, mode) is status
    v = Violation(constraint="c", rule_id="r", severity=severity, message="m", evidence={})
    assert verdict([v], mode) is status


@pytest.mark.parametrize("mode", list(EnforcementMode), ids=lambda m: m.value)
def test_no_violations_is_ok_in_every_mode(mode):
    assert verdict([], mode) is CheckStatus.OK


@pytest.mark.parametrize(
    ("rule_severity", "counted"),
    [("low", Severity.HIGH), ("medium", Severity.HIGH), ("critical", Severity.CRITICAL)],
    ids=["low_raised_to_high", "medium_raised_to_high", "critical_kept"],
)
def test_unevaluable_rule_is_at_least_a_high_violation(rule_severity, counted):
    result = evaluate_rule(R("r", "range_min", {"var": "nope"}, 1, rule_severity), Ctx())
    (v,) = violations_of([result], {"r": "ubo_count_min"})
    assert v.severity is counted and v.constraint == "ubo_count_min"
    assert verdict([v], EnforcementMode.RELAXED) is CheckStatus.FAIL


def test_worst_status_wins():
    vs = [
        Violation(constraint="a", rule_id="a", severity=Severity.LOW, message="", evidence={}),
        Violation(constraint="b", rule_id="b", severity=Severity.HIGH, message="", evidence={}),
    ]
    assert verdict(vs, EnforcementMode.RELAXED) is CheckStatus.FAIL
    assert verdict(vs[:1], EnforcementMode.RELAXED) is CheckStatus.WARN
