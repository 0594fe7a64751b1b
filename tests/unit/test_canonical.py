"""Canonical JSON: compact, unescaped UTF-8, typed order, sorted free-form keys, floats refused."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from core.canonical import Record, canonical_bytes, canonical_obj, dumps, pretty_bytes
from core.errors import InvalidInputError


class Typed(BaseModel):
    zeta: str
    alpha: int
    opt: str | None = None
    extra: dict | None = None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"b": 1, "a": 2}, b'{"a":2,"b":1}', id="free_form_sorted"),
        pytest.param(
            Typed(zeta="z", alpha=1), b'{"zeta":"z","alpha":1}', id="typed_field_order_optional_omitted"
        ),
        pytest.param(
            Typed(zeta="z", alpha=1, extra={"y": 1, "x": 2}),
            b'{"zeta":"z","alpha":1,"extra":{"x":2,"y":1}}',
            id="typed_with_free_form_inside",
        ),
        pytest.param(Record(b=None, a=1), b'{"b":null,"a":1}', id="record_keeps_order_and_null"),
        pytest.param(
            {"name": "Müller Ørsted"}, '{"name":"Müller Ørsted"}'.encode(), id="non_ascii_unescaped"
        ),
        pytest.param({"é": 1, "e": 2, "z": 3}, '{"e":2,"z":3,"é":1}'.encode(), id="code_point_order"),
        pytest.param([True, None, 'q"\\'], b'[true,null,"q\\"\\\\"]', id="escapes_quote_backslash"),
    ],
)
def test_canonical_bytes(value, expected):
    assert canonical_bytes(value) == expected


@pytest.mark.parametrize(
    "value",
    [1.5, {"a": [0.0]}, Typed(zeta="z", alpha=1, extra={"f": 2.0})],
    ids=["float", "nested_float", "float_in_model"],
)
def test_floats_are_refused_with_the_field_named(value):
    with pytest.raises(InvalidInputError) as err:
        canonical_bytes(value)
    assert err.value.details["field"].startswith("$")


def test_pretty_matches_original_form():
    assert pretty_bytes({"b": [1], "a": "x"}) == b'{\n  "a": "x",\n  "b": [\n    1\n  ]\n}'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(json_values)
def test_round_trip_is_stable(value):
    data = canonical_bytes(value)
    assert canonical_bytes(json.loads(data)) == data


# orjson writes the bytes; json.dumps is the reference it must match byte for byte.
wide_text = st.text(st.characters(codec="utf-8", categories=None, exclude_categories=["Cs"]))
wide_values = st.recursive(
    st.none() | st.booleans() | st.integers() | wide_text,
    lambda children: st.lists(children) | st.dictionaries(wide_text, children),
    max_leaves=30,
)


@given(wide_values)
def test_bytes_match_the_json_module_reference(value):
    reference = json.dumps(canonical_obj(value), separators=(",", ":"), ensure_ascii=False).encode()
    assert canonical_bytes(value) == reference
    assert dumps(canonical_obj(value)) == reference


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**40], ids=["u64_plus_1", "i64_minus_1", "huge"])
def test_integers_beyond_64_bits_still_serialise(number):
    assert canonical_bytes({"n": number}) == b'{"n":%d}' % number
    assert dumps({"z": number, "a": 1}) == b'{"z":%d,"a":1}' % number  # order kept


@pytest.mark.parametrize(
    "write",
    [canonical_bytes, lambda v: dumps(canonical_obj(v)), pretty_bytes],
    ids=["canonical_bytes", "dumps", "pretty_bytes"],
)
def test_lone_surrogates_are_refused_with_the_field_named(write):
    with pytest.raises(InvalidInputError) as err:
        write({"ok": "x", "name": ["fine", "bad\ud800"]})
    assert err.value.details["field"] == "$.name[1]"
    assert "U+D800" in err.value.details["found"]
