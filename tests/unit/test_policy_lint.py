"""The linter: the original's codes, levels, messages and emission order, plus our E2004."""

import pytest

from core.policy import Diagnostic, Level, LintMode, PolicyV2, lint

RULE = {"id": "no_sanctions", "op": "non_membership", "lhs": "supplier_hashes", "rhs": "sanctions_root"}


def _policy(**over) -> PolicyV2:
    base = {
        "id": "p",
        "version": "1.0",
        "legal_basis": [{"directive": "LkSG"}],
        "description": "d",
        "inputs": {},
        "rules": [RULE],
    }
    return PolicyV2.model_validate(base | over)


def _d(code, level, message, rule_id=None):
    return Diagnostic(code=code, level=Level(level), message=message, rule_id=rule_id)


ALLOWED = "non_membership, eq, range_min, range_max, membership"


@pytest.mark.parametrize(
    ("policy", "mode", "expected"),
    [
        pytest.param(_policy(), LintMode.STRICT, [], id="clean_strict"),
        pytest.param(_policy(), LintMode.RELAXED, [], id="clean_relaxed"),
        pytest.param(
            _policy(legal_basis=[]),
            LintMode.STRICT,
            [_d("E1002", "error", "missing `legal_basis`")],
            id="missing_legal_basis_strict",
        ),
        pytest.param(
            _policy(legal_basis=[]),
            LintMode.RELAXED,
            [_d("E1002", "warning", "missing `legal_basis`")],
            id="missing_legal_basis_relaxed",
        ),
        pytest.param(
            _policy(description=""),
            LintMode.STRICT,
            [_d("W1002", "warning", "description missing")],
            id="description_missing",
        ),
        pytest.param(
            _policy(rules=[RULE, RULE, RULE]),
            LintMode.STRICT,
            [_d("E1003", "error", "duplicate rule ID 'no_sanctions'", "no_sanctions")] * 2,
            id="duplicate_id_every_repeat",
        ),
        pytest.param(
            _policy(rules=[RULE | {"op": "invalid_op"}]),
            LintMode.STRICT,
            [_d("E2001", "error", f"invalid op 'invalid_op' (allowed: {ALLOWED})", "no_sanctions")],
            id="invalid_op",
        ),
        pytest.param(
            _policy(
                adaptivity={
                    "predicates": [{"id": "on", "expr": True}],
                    "activations": [{"when": "on", "rules": ["ghost"]}],
                }
            ),
            LintMode.STRICT,
            [_d("E1001", "error", "unknown rule id 'ghost' in activation 'on'", "ghost")],
            id="unknown_rule_in_activation",
        ),
        pytest.param(
            _policy(rules=[RULE | {"severity": "fatal"}]),
            LintMode.STRICT,
            [
                _d(
                    "E2004",
                    "error",
                    "invalid severity 'fatal' (allowed: critical, high, medium, low)",
                    "no_sanctions",
                )
            ],
            id="invalid_severity",
        ),
        pytest.param(
            _policy(rules=[RULE | {"severity": "critical"}]), LintMode.STRICT, [], id="valid_severity"
        ),
    ],
)
def test_lint_cases(policy, mode, expected):
    assert lint(policy, mode) == expected


def test_emission_order():
    bad = RULE | {"op": "nope", "severity": "huge"}
    policy = _policy(
        legal_basis=[],
        description="",
        rules=[bad, bad],
        adaptivity={"activations": [{"when": "x", "rules": ["ghost"]}]},
    )
    assert [d.code for d in lint(policy, LintMode.STRICT)] == [
        "E1002",
        "W1002",
        "E1003",
        "E2001",
        "E2001",
        "E1001",
        "E2004",
        "E2004",
    ]


def test_diagnostic_wire_form_keeps_null_rule_id():
    assert lint(_policy(description=""))[0].to_dict() == {
        "code": "W1002",
        "level": "warning",
        "message": "description missing",
        "rule_id": None,
    }
