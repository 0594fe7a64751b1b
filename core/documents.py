"""Reading JSON documents into typed models: JSON and pydantic errors translated in one place.

Every loader of a stored document (keyring, key metadata, lists file, proof, attestation, the CLI's
input files) goes through here, so bad input always names the file, the line or the field, and what
was expected.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from core.canonical import lone_surrogate_in
from core.errors import InvalidInputError

M = TypeVar("M", bound=BaseModel)

MAX_JSON_DEPTH = 64
"""The deepest nesting any document of ours needs is about 10; 64 leaves room and refuses bracket bombs."""

_STRUCTURE = bytes(range(256)).translate(None, b'"[]{}')  # every byte but quotes and brackets
_STRING = re.compile(rb'"[^"]*"')


def json_depth(text: str | bytes) -> int:
    """The deepest bracket nesting of JSON text, in linear passes that never recurse.

    The C parser recurses per level: where a process raised the recursion limit (py_ecc raises it to
    100,000 on import), 100k open brackets overflow the C stack, a crash rather than a RecursionError.
    So depth is measured before parsing, whatever the recursion limit is. Escaped backslashes and quotes
    go first, then every byte but quotes and brackets (C passes, a fraction of the parse itself), then the
    strings, which are now runs of nothing between quotes; what is left is the brackets.
    """
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    if b"\\" in data:  # one byte, found fast; most documents of ours escape nothing
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    # two adjacent quotes (a string without brackets, or a close and the next open) can go: the quotes left
    # still pair up, and what lies between each pair is string content
    structure = data.translate(None, _STRUCTURE).replace(b'""', b"")
    brackets = _STRING.sub(b"", structure)
    depth = deepest = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def loads_bounded(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that refuses nesting deeper than ``max_depth`` before parsing, with a
    :class:`json.JSONDecodeError` as for any other malformed JSON."""
    if json_depth(text) > max_depth:
        doc = text if isinstance(text, str) else text.decode("utf-8", "replace")
        raise json.JSONDecodeError(f"nested deeper than {max_depth} levels", doc, 0)
    return json.loads(text)


def dotted(loc: tuple[int | str, ...]) -> str:
    """``("rules", 0, "op")`` → ``"rules[0].op"``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse_json(data: bytes, *, source: str, what: str, expected: str | None = None) -> Any:
    """The JSON value of ``data``. Raises :class:`InvalidInputError` naming ``source`` and the line, or the
    field whose text is not valid Unicode (JSON can escape a lone surrogate such as ``\\ud800``)."""
    try:
        obj = loads_bounded(data.decode("utf-8"))  # decoded first: a UTF-8 error is named as such
    except UnicodeDecodeError:
        raise InvalidInputError(
            f"{what} is not UTF-8", file=source, expected=expected or "UTF-8 JSON"
        ) from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"{what} is not JSON: {exc.msg}", file=source, line=exc.lineno, expected=expected
        ) from None
    problem = lone_surrogate(obj)
    if problem is not None:
        field, found = problem
        raise InvalidInputError(
            f"{what} holds text that is not valid Unicode (a lone surrogate)",
            file=source,
            field=field,
            found=found,
            expected="valid Unicode text",
        )
    return obj


def lone_surrogate(value: Any, path: str = "$") -> tuple[str, str] | None:
    """``(field, found)`` for the first string or key in ``value`` holding a lone surrogate, else ``None``.

    Such text has no UTF-8 form, so it cannot be hashed, stored or printed. The common case, nothing wrong,
    costs one orjson dump (which refuses surrogates); only a refusal walks the structure to name the field.
    """
    try:
        orjson.dumps(value)
        return None
    except orjson.JSONEncodeError:  # also integers beyond 64 bits: the walk then finds nothing
        return _find_surrogate(value, path)


def _find_surrogate(value: Any, path: str) -> tuple[str, str] | None:
    if isinstance(value, str):
        where = lone_surrogate_in(value)
        return (path, where) if where is not None else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and lone_surrogate_in(key) is not None:
                return f"{path} (key {key!a})", "a key with a lone surrogate"
            found = _find_surrogate(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_surrogate(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def validate_model(model: type[M], obj: Any, *, source: str, what: str, expected: str | None = None) -> M:
    """``obj`` as a ``model``. Raises :class:`InvalidInputError` naming the first bad field."""
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise InvalidInputError(
            f"invalid {what}: {first['msg']}",
            file=source,
            field=dotted(tuple(first["loc"])) or "$",
            expected=expected,
        ) from None


def parse_model(model: type[M], data: bytes, *, source: str, what: str, expected: str | None = None) -> M:
    """Stored bytes as a ``model``: :func:`parse_json`, then :func:`validate_model`."""
    obj = parse_json(data, source=source, what=what, expected=expected)
    return validate_model(model, obj, source=source, what=what, expected=expected)
