"""Reading JSON documents into typed models: JSON and pydantic errors translated in one place.

Every loader of a stored document (keyring, key metadata, lists file, proof, attestation, the CLI's
input files) goes through here, so bad input always names the file, the line or the field, and what
was expected.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from core.errors import InvalidInputError

M = TypeVar("M", bound=BaseModel)


def dotted(loc: tuple[int | str, ...]) -> str:
    """``("rules", 0, "op")`` → ``"rules[0].op"``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse_json(data: bytes, *, source: str, what: str, expected: str | None = None) -> Any:
    """The JSON value of ``data``. Raises :class:`InvalidInputError` naming ``source`` and the line."""
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidInputError(
            f"{what} is not UTF-8", file=source, expected=expected or "UTF-8 JSON"
        ) from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"{what} is not JSON: {exc.msg}", file=source, line=exc.lineno, expected=expected
        ) from None


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
