"""Policy v2 (original §2.2): the typed record and its hash.

Field order here is the hashing order: id, version, legal_basis, description, inputs (a sorted map),
rules, adaptivity?. Unknown keys are ignored. ``op`` and ``severity`` stay plain strings so that
the linter (``core.policy.lint``) can report bad values as E2001 / E2004 rather than parse errors.
Operands and predicate expressions are JSON without floats. No I/O here.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictStr

from core.canonical import canonical_bytes
from core.digest import sha3_prefixed
from core.policy.ir import Adaptivity, JsonOperand


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True)


class LegalBasis(_Value):
    """A legal reference; each part omitted from the hash when absent."""

    directive: StrictStr | None = None
    article: StrictStr | None = None


class InputSpec(_Value):
    """A declared input: its type name and, for arrays, the item type."""

    type: StrictStr
    items: StrictStr | None = None


class RuleV2(_Value):
    """One rule. A string operand names a variable; ``severity`` (ours) is omitted when absent."""

    id: StrictStr
    op: StrictStr
    lhs: JsonOperand
    rhs: JsonOperand
    severity: StrictStr | None = None


class PolicyV2(_Value):
    """A policy v2 document. ``legal_basis`` may be empty (lint E1002), ``description`` defaults to ""."""

    id: StrictStr
    version: StrictStr
    legal_basis: tuple[LegalBasis, ...] = ()
    description: StrictStr = ""
    inputs: dict[StrictStr, InputSpec]
    rules: tuple[RuleV2, ...]
    adaptivity: Adaptivity | None = None


def policy_v2_bytes(policy: PolicyV2) -> bytes:
    """The canonical compact JSON that is hashed (declaration order, inputs and operand maps sorted)."""
    return canonical_bytes(policy)


def policy_v2_hash(policy: PolicyV2) -> str:
    """``sha3-256:`` + SHA3-256 of :func:`policy_v2_bytes`."""
    return sha3_prefixed(policy_v2_bytes(policy))
