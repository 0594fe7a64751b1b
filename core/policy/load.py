"""Reading policy documents: YAML or JSON text → :class:`PolicyV1` or :class:`PolicyV2`.

Owns the YAML dialect (safe loader; timestamps stay strings and only true/false are booleans, as in
the original's YAML 1.2 reader; duplicate keys are refused in linear time; size, count and depth limits
of :mod:`core.policy.limits`), the v1-vs-v2 decision and the one
place where YAML and pydantic errors become :class:`InvalidInputError` with file, line, field and
expected. :func:`load_policy_file` is the only function that touches the file system.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from core.documents import json_depth
from core.errors import InvalidInputError, NotFoundError
from core.policy.ir import validation_error
from core.policy.limits import (
    DEFAULT_LIMITS,
    PolicyLimits,
    check_data,
    check_nodes,
    check_rules,
    check_text,
    refuse,
)
from core.policy.v1 import PolicyV1
from core.policy.v2 import PolicyV2

M = TypeVar("M", bound=BaseModel)
_BOOL = "tag:yaml.org,2002:bool"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


if TYPE_CHECKING:
    _SafeBase = yaml.SafeLoader
else:  # libyaml when present
    _SafeBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _PolicyLoader(_SafeBase):
    """SafeLoader without YAML 1.1 surprises (``yes``/``on`` booleans, timestamp objects, dup keys)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                continue  # non-string keys are refused later by validation
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


_PolicyLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _TIMESTAMP)]
    for first, resolvers in _SafeBase.yaml_implicit_resolvers.items()
}
_PolicyLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _parse_yaml(text: str, source: str, limits: PolicyLimits) -> tuple[Any, yaml.Node | None]:
    loader = _PolicyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        check_nodes(node, source, limits)  # aliases, counts and depth, before anything is constructed
        return loader.construct_document(node), node
    except RecursionError as exc:
        raise refuse("depth", limits.max_depth, "deeper than the parser's stack", source) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "unreadable document"
        raise InvalidInputError(
            f"invalid YAML: {problem}", file=source, line=line, expected="a YAML or JSON policy document"
        ) from exc
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"YAML error: {exc}", file=source, expected="a YAML policy") from exc
    finally:
        loader.dispose()


def _parse_json(text: str, source: str, limits: PolicyLimits) -> Any:
    keys = 0
    deepest = json_depth(text)
    if deepest > limits.max_depth:
        raise refuse("depth", limits.max_depth, deepest, source)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal keys
        keys += len(items)
        if keys > limits.max_keys:  # refused before the mapping is even built
            raise refuse("keys", limits.max_keys, f"more than {limits.max_keys}", source)
        mapping = dict(items)
        if len(mapping) != len(items):  # linear: a dict drops duplicates, so the sizes differ
            duplicate = _first_duplicate(key for key, _ in items)
            raise InvalidInputError(f"duplicate key {duplicate!r}", file=source, expected="unique keys")
        return mapping

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except RecursionError as exc:
        raise refuse("depth", limits.max_depth, "deeper than the parser's stack", source) from exc
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"JSON syntax error: {exc.msg}",
            file=source,
            line=exc.lineno,
            column=exc.colno,
            expected="a JSON policy document",
        ) from exc
    check_data(data, source, limits)
    return data


def _first_duplicate(keys: Iterable[str]) -> str | None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    return None


def _lines_of(text: str) -> yaml.Node | None:
    """Best-effort YAML node tree of a JSON document, only to name lines in later errors."""
    try:
        return yaml.compose(text, Loader=_SafeBase)
    except yaml.YAMLError:
        return None


def parse_document(
    text: str, source: str, limits: PolicyLimits = DEFAULT_LIMITS
) -> tuple[dict[str, Any], yaml.Node | None]:
    """The document as a mapping plus its node tree (for line numbers; None for JSON, whose tree is
    composed only when an error needs a line, see :func:`validate_as`).

    Raises InvalidInputError; its :mod:`core.policy.limits` kinds when the text, keys, items, rules,
    strings or nesting exceed ``limits`` (checked before or while parsing, never after the expensive work).
    """
    check_text(text, source, limits)
    if text.lstrip().startswith("{"):
        data, node = _parse_json(text, source, limits), None  # lines only when an error needs one
    else:
        data, node = _parse_yaml(text, source, limits)
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        line = node.start_mark.line + 1 if node is not None else None
        raise InvalidInputError(
            f"policy document is {kind}, not a mapping",
            file=source,
            line=line,
            expected="a mapping with version, name/id, ...",
        )
    check_rules(data, source, limits)
    return data, node


def line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the deepest node on ``loc`` that exists (the parent for a missing key)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            child = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


def validate_as(
    model: type[M], data: dict[str, Any], source: str, node: yaml.Node | None, text: str | None = None
) -> M:
    """``model.model_validate(data)``; a ValidationError becomes InvalidInputError with file and line
    (from ``node``, or from composing ``text`` when no node was kept)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        loc = tuple(exc.errors(include_url=False)[0]["loc"])
        lines = node if node is not None or text is None else _lines_of(text)
        raise validation_error(exc, source, line_of(lines, loc)) from exc


def is_v1(data: dict[str, Any]) -> bool:
    """v1 when a ``lksg.v…`` version comes with ``constraints`` or without ``id``, or when
    ``constraints`` come without ``id``; everything else is read as v2 (which needs ``id``)."""
    version = data.get("version")
    lksg = isinstance(version, str) and version.startswith("lksg.v")
    if "id" not in data:
        return lksg or "constraints" in data
    return lksg and "constraints" in data


def load_policy_text(text: str, source: str = "<policy>") -> PolicyV1 | PolicyV2:
    """Parse a YAML or JSON policy. Raises :class:`InvalidInputError` naming file, line, field, expected."""
    data, node = parse_document(text, source)
    if is_v1(data):
        return validate_as(PolicyV1, data, source, node, text)
    return validate_as(PolicyV2, data, source, node, text)


def load_policy_file(path: str | Path) -> PolicyV1 | PolicyV2:
    """Read and parse a policy file (UTF-8, BOM tolerated).

    Raises :class:`NotFoundError` for a missing file, :class:`InvalidInputError` otherwise.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise NotFoundError("policy file not found", file=str(path), expected="an existing file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"cannot read policy file: {exc}", file=str(path), expected="a readable UTF-8 file"
        ) from exc
    return load_policy_text(text, source=str(path))
