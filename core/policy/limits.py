"""Size and count limits on policy documents, checked before and while a policy is parsed.

A policy is a page of rules; these limits are orders of magnitude above any real one and far below what
would make parsing or linting expensive. Each refusal names the limit, its maximum and what was found:
:class:`PolicyTooLargeError` (the text, HTTP 413) and :class:`PolicyLimitError` (shape, HTTP 422).
YAML anchors and aliases are refused outright: a policy never needs them, and shared nodes would let a
small document expand into a huge one ("billion laughs").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from core.errors import InvalidInputError


class PolicyTooLargeError(InvalidInputError):
    """The policy text is longer than :attr:`PolicyLimits.max_bytes`."""

    code = "policy_too_large"


class PolicyLimitError(InvalidInputError):
    """The policy has more keys, rules, nesting or longer strings than :class:`PolicyLimits` allows."""

    code = "policy_limit_exceeded"


@dataclass(frozen=True)
class PolicyLimits:
    max_bytes: int = 1024 * 1024  # real policies are a few KB
    max_keys: int = 10_000  # mapping keys in the whole document
    max_items: int = 10_000  # sequence items in the whole document
    max_rules: int = 1_000
    max_string: int = 4_096  # characters in one key or value
    max_depth: int = 32


DEFAULT_LIMITS = PolicyLimits()


def refuse(limit: str, maximum: int, found: int | str, source: str) -> PolicyLimitError:
    return PolicyLimitError(
        f"policy exceeds the {limit} limit ({maximum})",
        file=source,
        limit=limit,
        maximum=maximum,
        found=found,
        expected=f"at most {maximum} {limit}",
    )


def check_text(text: str, source: str, limits: PolicyLimits) -> None:
    """Raises :class:`PolicyTooLargeError` before any parsing when the text is over ``max_bytes``."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise PolicyTooLargeError(
            f"policy text is {size} bytes, over the {limits.max_bytes}-byte limit",
            file=source,
            limit="bytes",
            maximum=limits.max_bytes,
            found=size,
            expected=f"at most {limits.max_bytes} bytes",
        )


def check_nodes(root: yaml.Node, source: str, limits: PolicyLimits) -> None:
    """Walks a composed YAML tree once (no recursion) before anything is constructed.

    Raises :class:`PolicyLimitError` on an alias (a node reached twice) or any limit.
    """
    seen: set[int] = set()
    counts = {"keys": 0, "items": 0}
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            raise PolicyLimitError(
                "YAML anchors and aliases are not allowed in a policy",
                file=source,
                line=node.start_mark.line + 1,
                limit="aliases",
                expected="a document without &anchors and *aliases",
            )
        seen.add(id(node))
        if depth > limits.max_depth:
            raise refuse("depth", limits.max_depth, depth, source)
        if isinstance(node, yaml.MappingNode):
            _count(counts, "keys", len(node.value), limits.max_keys, source)
            stack.extend((child, depth + 1) for pair in node.value for child in pair)
        elif isinstance(node, yaml.SequenceNode):
            _count(counts, "items", len(node.value), limits.max_items, source)
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node.value, str) and len(node.value) > limits.max_string:
            raise refuse("string length", limits.max_string, len(node.value), source)


def check_data(data: Any, source: str, limits: PolicyLimits) -> None:
    """The same limits over parsed JSON (a tree: JSON has no aliases). Raises :class:`PolicyLimitError`."""
    counts = {"keys": 0, "items": 0}
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limits.max_depth:
            raise refuse("depth", limits.max_depth, depth, source)
        if isinstance(value, dict):
            _count(counts, "keys", len(value), limits.max_keys, source)
            stack.extend((k, depth + 1) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            _count(counts, "items", len(value), limits.max_items, source)
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str) and len(value) > limits.max_string:
            raise refuse("string length", limits.max_string, len(value), source)


def check_rules(data: dict[str, Any], source: str, limits: PolicyLimits) -> None:
    """Raises :class:`PolicyLimitError` when ``rules`` (v2) has more than ``max_rules`` entries."""
    rules = data.get("rules")
    if isinstance(rules, list) and len(rules) > limits.max_rules:
        raise refuse("rules", limits.max_rules, len(rules), source)


def _count(counts: dict[str, int], kind: str, n: int, maximum: int, source: str) -> None:
    counts[kind] += n
    if counts[kind] > maximum:
        raise refuse(kind, maximum, f"more than {maximum}", source)
