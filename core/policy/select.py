"""The selector (original §5.1): which rules of an IR are active for a set of variables.

No adaptivity → every rule, in IR order. With adaptivity → each activation whose predicate holds
adds its rule ids; the result is de-duplicated and sorted. Predicate language: a JSON boolean;
the strings "true"/"false"; any other string names a boolean variable; ``{"func": "lt"|"gt",
"args": [a, b]}`` compares numbers (literals or numeric variable names); ``{"func": "eq", "args":
[a, b]}`` compares the raw JSON values. Anything else, an unknown predicate id or a missing
variable raises :class:`InvalidInputError`. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.errors import InvalidInputError
from core.policy.ir import PolicyIR

_PREDICATE_FORMS = "a boolean, 'true'/'false', a variable name or {func: lt|gt|eq, args: [a, b]}"


def _variable(name: str, variables: Mapping[str, object], predicate_id: str) -> object:
    if name not in variables:
        raise InvalidInputError(
            f"predicate '{predicate_id}' uses unknown variable '{name}'",
            field=f"variables.{name}",
            expected="a value for every variable a predicate uses",
        )
    return variables[name]


def _number(arg: Any, variables: Mapping[str, object], predicate_id: str) -> int | float:
    value = _variable(arg, variables, predicate_id) if isinstance(arg, str) else arg
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(
            f"predicate '{predicate_id}': {arg!r} is not a number",
            field=f"predicates.{predicate_id}.args",
            expected="numbers or numeric variables",
        )
    return value


def _call(expr: dict[str, Any], variables: Mapping[str, object], predicate_id: str) -> bool:
    func, args = expr.get("func"), expr.get("args")
    if not isinstance(args, list) or len(args) != 2:
        raise InvalidInputError(
            f"predicate '{predicate_id}' needs two args",
            field=f"predicates.{predicate_id}.args",
            expected="args: [a, b]",
        )
    if func == "eq":
        return bool(args[0] == args[1] and type(args[0]) is type(args[1]))
    if func in ("lt", "gt"):
        a, b = (_number(arg, variables, predicate_id) for arg in args)
        return a < b if func == "lt" else a > b
    raise InvalidInputError(
        f"predicate '{predicate_id}' uses unknown func {func!r}",
        field=f"predicates.{predicate_id}.func",
        expected="lt, gt or eq",
    )


def evaluate_predicate(expr: Any, variables: Mapping[str, object], predicate_id: str = "<expr>") -> bool:
    """Evaluate one predicate expression. Raises :class:`InvalidInputError` (bad form, missing variable)."""
    if isinstance(expr, bool):
        return expr
    if isinstance(expr, str) and expr in ("true", "false"):
        return expr == "true"
    if isinstance(expr, str):
        value = _variable(expr, variables, predicate_id)
        if not isinstance(value, bool):
            raise InvalidInputError(
                f"variable '{expr}' is not a boolean", field=f"variables.{expr}", expected="true or false"
            )
        return value
    if isinstance(expr, dict):
        return _call(expr, variables, predicate_id)
    raise InvalidInputError(
        f"predicate '{predicate_id}' has an unsupported form",
        field=f"predicates.{predicate_id}.expr",
        expected=_PREDICATE_FORMS,
    )


def active_rule_ids(ir: PolicyIR, variables: Mapping[str, object]) -> list[str]:
    """The active rule ids. Raises :class:`InvalidInputError` (unknown predicate id, bad predicate)."""
    if ir.adaptivity is None:
        return [rule.id for rule in ir.rules]
    predicates = {p.id: p.expr for p in ir.adaptivity.predicates}
    active: set[str] = set()
    for activation in ir.adaptivity.activations:
        if activation.when not in predicates:
            raise InvalidInputError(
                f"activation refers to unknown predicate '{activation.when}'",
                field="adaptivity.activations.when",
                expected="a declared predicate id",
            )
        if evaluate_predicate(predicates[activation.when], variables, activation.when):
            active.update(activation.rules)
    return sorted(active)
