"""``core.documents.json_depth``: the nesting a parser would recurse through, measured without recursing,
so brackets, quotes and backslashes inside strings never count (where a bracket bomb would hide)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from core.documents import json_depth

TRICKY = st.text(alphabet='ab"\\[]{}\n ü\u2028', max_size=8)
JSON = st.recursive(
    st.none() | st.integers() | TRICKY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TRICKY, inner, max_size=3),
    max_leaves=20,
)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@given(JSON, st.booleans())
def test_depth_is_the_parsed_documents_nesting(value, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert json_depth(text) == json_depth(text.encode()) == _depth(value)


def test_escaped_quotes_and_backslashes_do_not_end_a_string():
    assert json_depth(r'{"k\\": "[[[\"{{", "v": [[1]]}') == 3
    assert json_depth('"' + "[" * 100 + '"') == 0
    assert json_depth("[" * 100_000 + "]" * 100_000) == 100_000
