"""The one JSON-document reader: every failure names the file and the line or field."""

import pytest
from pydantic import BaseModel

from core.documents import dotted, parse_model
from core.errors import InvalidInputError


class Inner(BaseModel):
    count: int


class Doc(BaseModel):
    name: str
    items: list[Inner]


@pytest.mark.parametrize(
    ("data", "message", "where"),
    [
        pytest.param(b'{"name": "a",\n "items": [', "doc is not JSON", {"line": 2}, id="not_json_names_line"),
        pytest.param(b"\xff\xfe{}", "doc is not UTF-8", {}, id="not_utf8"),
        pytest.param(
            b'{"name": "a", "items": [{"count": "x"}]}',
            "invalid doc",
            {"field": "items[0].count"},
            id="bad_nested_field",
        ),
        pytest.param(b'{"items": []}', "invalid doc", {"field": "name"}, id="missing_field"),
        pytest.param(b"[]", "invalid doc", {"field": "$"}, id="not_an_object"),
        pytest.param(
            b'{"name": "a", "items": [], "x": {"y": ["ok", "\\ud800"]}}',
            "doc holds text that is not valid Unicode",
            {"field": "$.x.y[1]", "found": "U+D800 at character 0"},
            id="lone_surrogate_value",
        ),
        pytest.param(
            b'{"\\udfff": 1}',
            "doc holds text that is not valid Unicode",
            {"field": "$ (key '\\udfff')"},
            id="lone_surrogate_key",
        ),
    ],
)
def test_bad_documents_name_file_and_place(data, message, where):
    with pytest.raises(InvalidInputError) as err:
        parse_model(Doc, data, source="doc.json", what="doc", expected="a doc")
    assert err.value.message.startswith(message)
    assert err.value.details["file"] == "doc.json"
    assert where.items() <= err.value.details.items()


def test_surrogate_pairs_and_big_integers_are_valid():
    doc = parse_model(
        Doc, b'{"name": "\\ud83d\\ude00", "items": [{"count": 18446744073709551616}]}', source="d", what="doc"
    )
    assert doc.name == "\U0001f600"
    assert doc.items[0].count == 2**64


def test_good_document_and_dotted_paths():
    assert (
        parse_model(Doc, b'{"name": "a", "items": [{"count": 1}]}', source="d", what="doc").items[0].count
        == 1
    )
    assert dotted(("rules", 0, "op")) == "rules[0].op"
