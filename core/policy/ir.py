"""IR v1: the compiled, evaluator-facing form of every policy (original §2.4, byte compatible).

Owns the value types shared by policy v2 and the IR (ops, severities, JSON operands, adaptivity),
the IR records, the IR hash rule (``sha3-256`` over the compact IR with ``ir_hash`` = ``""``) and
:func:`load_ir`, which parses stored IR bytes and re-checks their hash. No file I/O here.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, ValidationError
from pydantic_core import PydanticCustomError

from core.canonical import canonical_bytes, pretty_bytes
from core.digest import digests_equal, sha3_prefixed
from core.documents import dotted
from core.errors import IntegrityError, InvalidInputError

IR_VERSION: Literal["1.0"] = "1.0"
POLICY_HASH_PATTERN = r"^(0x|sha3-256:)[0-9a-f]{64}$"
IR_HASH_PATTERN = r"sha3-256:[0-9a-f]{64}"


class Op(StrEnum):
    """Rule operators: the original's three, then ours (this order is the order lint messages list)."""

    NON_MEMBERSHIP = "non_membership"
    EQ = "eq"
    RANGE_MIN = "range_min"
    RANGE_MAX = "range_max"
    MEMBERSHIP = "membership"


class Severity(StrEnum):
    """How bad a failed rule is. Optional on a rule; see :func:`effective_severity` for defaults."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


ALLOWED_OPS: tuple[str, ...] = tuple(op.value for op in Op)
ALLOWED_SEVERITIES: tuple[str, ...] = tuple(s.value for s in Severity)
_JSON_EXPECTED = "a string, integer, boolean, list or mapping (no floats)"


def _check_json(value: Any, where: str) -> None:
    if isinstance(value, float):
        at = f" at {where}" if where else ""
        raise PydanticCustomError(
            "cap_float",
            "floating-point number {found}{at} is not allowed (policies are hashed)",
            {"found": value, "at": at, "expected": "an integer or a string"},
        )
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise PydanticCustomError(
                    "cap_key",
                    "mapping key {key!r} is not a string",
                    {"key": str(key), "expected": "string keys"},
                )
            _check_json(item, f"{where}.{key}" if where else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]")
    elif not (value is None or isinstance(value, (bool, int, str))):
        raise PydanticCustomError(
            "cap_json",
            "value of type {kind} is not JSON",
            {"kind": type(value).__name__, "expected": _JSON_EXPECTED},
        )


def _json_operand(value: Any) -> Any:
    """A JSON value usable as an operand or predicate: no floats, not null at the top."""
    if value is None:
        raise PydanticCustomError("cap_null", "value must not be null", {"expected": _JSON_EXPECTED})
    _check_json(value, "")
    return value


JsonOperand = Annotated[Any, AfterValidator(_json_operand)]


def _ir_hash_text(value: str) -> str:
    if value and not re.fullmatch(IR_HASH_PATTERN, value):
        raise PydanticCustomError(
            "cap_ir_hash", "not an IR hash", {"expected": "sha3-256: + 64 lowercase hex"}
        )
    return value


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True)


class Predicate(_Value):
    """An adaptivity predicate: ``expr`` in the selector language (see ``core.policy.select``)."""

    id: StrictStr
    expr: JsonOperand


class Activation(_Value):
    """When predicate ``when`` holds, the listed rule ids are active."""

    when: StrictStr
    rules: tuple[StrictStr, ...]


class Adaptivity(_Value):
    """Predicates and activations, copied unchanged from policy v2 into the IR (not sorted)."""

    predicates: tuple[Predicate, ...] = ()
    activations: tuple[Activation, ...] = ()


class IrRule(_Value):
    """One compiled rule. String operands have already become ``{"var": name}``."""

    id: StrictStr
    op: Op
    lhs: JsonOperand
    rhs: JsonOperand
    severity: Severity | None = None


class PolicyIR(_Value):
    """IR v1 in hashing order: ir_version, policy_id, policy_hash, rules, adaptivity?, ir_hash."""

    ir_version: Literal["1.0"] = IR_VERSION
    policy_id: StrictStr
    policy_hash: Annotated[StrictStr, Field(pattern=POLICY_HASH_PATTERN)]
    rules: tuple[IrRule, ...]
    adaptivity: Adaptivity | None = None
    ir_hash: Annotated[StrictStr, AfterValidator(_ir_hash_text)] = ""


_DEFAULT_SEVERITY = {Op.NON_MEMBERSHIP: Severity.CRITICAL}


def effective_severity(rule: IrRule) -> Severity:
    """The rule's severity, else the default (SPEC §2.4): non_membership critical, others high."""
    if rule.severity is not None:
        return rule.severity
    return _DEFAULT_SEVERITY.get(rule.op, Severity.HIGH)


def var_operand(expr: Any) -> Any:
    """The original's operand rule: a string names a variable and becomes ``{"var": s}``."""
    return {"var": expr} if isinstance(expr, str) else expr


def compute_ir_hash(ir: PolicyIR) -> str:
    """``sha3-256:`` over the compact IR with ``ir_hash`` set to the empty string."""
    return sha3_prefixed(canonical_bytes(ir.model_copy(update={"ir_hash": ""})))


def build_ir(
    policy_id: str, policy_hash: str, rules: list[IrRule], adaptivity: Adaptivity | None = None
) -> PolicyIR:
    """Assemble an IR: rules sorted by id (code point = UTF-8 byte order), then hash it."""
    ordered = tuple(sorted(rules, key=lambda rule: rule.id))
    draft = PolicyIR(policy_id=policy_id, policy_hash=policy_hash, rules=ordered, adaptivity=adaptivity)
    return draft.model_copy(update={"ir_hash": compute_ir_hash(draft)})


def ir_canonical_bytes(ir: PolicyIR) -> bytes:
    """The compact IR bytes (what is hashed, with the real ``ir_hash`` in place)."""
    return canonical_bytes(ir)


def ir_pretty_bytes(ir: PolicyIR) -> bytes:
    """The original's written IR file: 2-space indent, no trailing newline."""
    return pretty_bytes(ir)


def load_ir(data: bytes, source: str = "<ir>") -> PolicyIR:
    """Parse and validate stored IR bytes and recompute ``ir_hash``.

    Raises :class:`InvalidInputError` (not JSON, wrong shape, duplicate rule ids) and
    :class:`IntegrityError` when the stored ``ir_hash`` does not match the content.
    """
    try:
        obj = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidInputError("IR is not UTF-8", file=source, expected="UTF-8 JSON") from exc
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"IR is not JSON: {exc.msg}", file=source, line=exc.lineno, expected="IR v1 JSON"
        ) from exc
    try:
        ir = PolicyIR.model_validate(obj)
    except ValidationError as exc:
        raise validation_error(exc, source) from exc
    _check_unique_ids(ir, source)
    expected = compute_ir_hash(ir)
    if not digests_equal(expected, ir.ir_hash):
        raise IntegrityError(
            "IR hash does not match its content",
            file=source,
            field="ir_hash",
            expected=expected,
            found=ir.ir_hash,
        )
    return ir


def _check_unique_ids(ir: PolicyIR, source: str) -> None:
    seen: set[str] = set()
    for index, rule in enumerate(ir.rules):
        if rule.id in seen:
            raise InvalidInputError(
                f"duplicate rule id {rule.id!r}",
                file=source,
                field=f"rules[{index}].id",
                expected="unique rule ids",
            )
        seen.add(rule.id)


_EXPECTED_BY_TYPE = {
    "missing": "a value",
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "true or false",
    "tuple_type": "a list",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "enum": "one of the listed values",
    "literal_error": "the listed literal",
    "string_pattern_mismatch": "the pattern shown",
}


def validation_error(exc: ValidationError, source: str, line: int | None = None) -> InvalidInputError:
    """Translate a pydantic error into :class:`InvalidInputError` naming file, line, field, expected."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    field = dotted(tuple(first["loc"]))
    ctx = first.get("ctx") or {}
    expected = ctx.get("expected") or _EXPECTED_BY_TYPE.get(first["type"])
    problems = [f"{dotted(tuple(e['loc'])) or '<document>'}: {e['msg']}" for e in errors]
    return InvalidInputError(
        f"{field or '<document>'}: {first['msg']}",
        file=source,
        line=line,
        field=field or None,
        expected=str(expected) if expected else None,
        problems=problems if len(problems) > 1 else None,
    )
