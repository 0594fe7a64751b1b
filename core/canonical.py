"""Canonical JSON bytes: the one canonicaliser used for every hash and signature.

Rules (SPEC §2.1, compatible with the original's serde_json without ``preserve_order``):
compact separators, UTF-8 without ``\\u`` escaping of non-ASCII, typed records (pydantic models
and :class:`Record`) in field order with absent optionals omitted, free-form maps with keys sorted
by code point. Floats are refused: signed payloads carry integers and strings only, and so are strings
holding lone surrogates (they have no UTF-8 form).

Bytes come from orjson, whose compact output is byte-identical to ``json.dumps(separators=(",", ":"),
ensure_ascii=False)`` for this structure (a property test holds the two together) and about six times
faster; integers beyond 64 bits, which orjson refuses, go through ``json``.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

import orjson
from pydantic import BaseModel

from core.errors import InvalidInputError


class Record(dict[str, Any]):
    """A typed record built by hand: keys stay in insertion order and ``None`` is kept as null."""


class _Unsupported(Exception):
    """Raised by the fast path; the checked path then finds and names the offending field."""


_SCALARS = (str, int, bool, type(None))
_FIELDS: dict[type[BaseModel], tuple[tuple[str, str], ...]] = {}


def _fields(model: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    """(attribute, JSON key) per field of ``model``, in declaration order (cached per class)."""
    found = _FIELDS.get(model)
    if found is None:
        found = tuple((n, f.serialization_alias or f.alias or n) for n, f in model.model_fields.items())
        _FIELDS[model] = found
    return found


def _fast(value: Any) -> Any:
    """The canonical structure without path bookkeeping (the hot path for hashing and signing)."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    # Scalars are tested inline before recursing: most leaves are strings in lists (Merkle paths).
    if kind is dict:
        if not all(type(k) is str for k in value):
            raise _Unsupported
        return {k: v if type(v) in _SCALARS else _fast(v) for k, v in sorted(value.items())}
    if kind is list or kind is tuple:
        return [v if type(v) in _SCALARS else _fast(v) for v in value]
    if isinstance(value, BaseModel):
        out = {}
        for name, key in _fields(kind):
            item = getattr(value, name)
            if item is not None:
                out[key] = item if type(item) in _SCALARS else _fast(item)
        return out
    if isinstance(value, Enum) and isinstance(value.value, str):
        return value.value
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # NamedTuple: a typed record
        return {k: _fast(v) for k, v in zip(value._fields, value, strict=True)}
    if isinstance(value, Record):
        return {k: _fast(v) for k, v in value.items()}
    raise _Unsupported


def _checked(value: Any, path: str) -> Any:
    """The same structure, naming the field of anything that cannot be canonicalised."""
    if isinstance(value, BaseModel):
        return {
            key: _checked(getattr(value, name), f"{path}.{key}")
            for name, key in _fields(type(value))
            if getattr(value, name) is not None
        }
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {k: _checked(v, f"{path}.{k}") for k, v in zip(value._fields, value, strict=True)}
    if isinstance(value, Record):
        return {k: _checked(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise InvalidInputError("object keys must be strings", field=path, found=repr(key))
        return {k: _checked(value[k], f"{path}.{k}") for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_checked(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float):
        raise InvalidInputError("floating-point number in canonical data", field=path, expected="integer")
    if isinstance(value, Enum) and isinstance(value.value, str):
        return value.value
    if isinstance(value, str):
        _check_text(value, path)
        return value
    if isinstance(value, int) or value is None:
        return value
    raise InvalidInputError(f"value of type {type(value).__name__} cannot be canonicalised", field=path)


def lone_surrogate_in(text: str) -> str | None:
    """Where ``text`` holds a lone surrogate (no UTF-8 form), as ``U+D800 at character 3``; else ``None``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"U+{ord(text[exc.start]):04X} at character {exc.start}"
    return None


def _check_text(value: str, path: str) -> None:
    found = lone_surrogate_in(value)
    if found is not None:
        raise InvalidInputError(
            "text holds a lone surrogate, which has no UTF-8 form",
            field=path,
            found=found,
            expected="valid Unicode text",
        )


def _prepare(value: Any, path: str) -> Any:
    try:
        return _fast(value)
    except _Unsupported:
        return _checked(value, path)


def canonical_obj(value: Any) -> Any:
    """The JSON-ready structure whose compact dump is the canonical form."""
    return _prepare(value, "$")


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON of an already canonical structure (from :func:`canonical_obj`), keys as given.

    Raises :class:`InvalidInputError` naming the field when ``obj`` holds something canonical JSON cannot.
    """
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError:
        _checked(obj, "$")  # raises, naming the field, unless the trouble is a big integer
        return _json_compact(obj)


def canonical_bytes(value: Any) -> bytes:
    """Canonical compact JSON bytes of ``value``. Raises :class:`InvalidInputError` on floats."""
    try:
        return orjson.dumps(_fast(value))
    except (_Unsupported, orjson.JSONEncodeError):
        return _json_compact(_checked(value, "$"))


def _json_compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def pretty_bytes(value: Any) -> bytes:
    """The original's pretty form: 2-space indent, ``": "`` after keys, no trailing newline."""
    obj = _prepare(value, "$")
    try:
        return json.dumps(obj, indent=2, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        _checked(value, "$")  # names the field with the lone surrogate
        raise
