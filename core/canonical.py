"""Canonical JSON bytes: the one canonicaliser used for every hash and signature.

Rules (SPEC §2.1, compatible with the original's serde_json without ``preserve_order``):
compact separators, UTF-8 without ``\\u`` escaping of non-ASCII, typed records (pydantic models
and :class:`Record`) in field order with absent optionals omitted, free-form maps with keys sorted
by code point. Floats are refused: signed payloads carry integers and strings only.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from core.errors import InvalidInputError


class Record(dict[str, Any]):
    """A typed record built by hand: keys stay in insertion order and ``None`` is kept as null."""


def _prepare(value: Any, path: str) -> Any:
    if isinstance(value, BaseModel):
        out: dict[str, Any] = {}
        for name, field in type(value).model_fields.items():
            item = getattr(value, name)
            if item is None:
                continue
            key = field.serialization_alias or field.alias or name
            out[key] = _prepare(item, f"{path}.{key}")
        return out
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # NamedTuple: a typed record
        return {k: _prepare(v, f"{path}.{k}") for k, v in zip(value._fields, value, strict=True)}
    if isinstance(value, Record):
        return {k: _prepare(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise InvalidInputError("object keys must be strings", field=path, found=repr(key))
        return {k: _prepare(value[k], f"{path}.{k}") for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_prepare(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        raise InvalidInputError("floating-point number in canonical data", field=path, expected="integer")
    if hasattr(value, "value") and isinstance(value.value, str):  # enums
        return value.value
    raise InvalidInputError(f"value of type {type(value).__name__} cannot be canonicalised", field=path)


def canonical_obj(value: Any) -> Any:
    """The JSON-ready structure whose compact dump is the canonical form."""
    return _prepare(value, "$")


def canonical_bytes(value: Any) -> bytes:
    """Canonical compact JSON bytes of ``value``. Raises :class:`InvalidInputError` on floats."""
    return json.dumps(_prepare(value, "$"), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def pretty_bytes(value: Any) -> bytes:
    """The original's pretty form: 2-space indent, ``": "`` after keys, no trailing newline."""
    return json.dumps(_prepare(value, "$"), indent=2, ensure_ascii=False).encode("utf-8")
