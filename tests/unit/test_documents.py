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
    ],
)
def test_bad_documents_name_file_and_place(data, message, where):
    with pytest.raises(InvalidInputError) as err:
        parse_model(Doc, data, source="doc.json", what="doc", expected="a doc")
    assert err.value.message.startswith(message)
    assert err.value.details["file"] == "doc.json"
    assert where.items() <= err.value.details.items()


def test_good_document_and_dotted_paths():
    assert (
        parse_model(Doc, b'{"name": "a", "items": [{"count": 1}]}', source="d", what="doc").items[0].count
        == 1
    )
    assert dotted(("rules", 0, "op")) == "rules[0].op"
