"""Commitments: the original's vectors, both schemes, and every bad-input case named by file/line/column."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.canonical import canonical_bytes
from core.commitments import (
    RootScheme,
    Supplier,
    commit,
    parse_suppliers,
    parse_ubos,
    read_suppliers,
    read_ubos,
    supplier_leaf,
    supplier_leaf_bytes,
    ubo_leaf_bytes,
)
from core.errors import InvalidInputError

SUPPLIERS = (
    "name,jurisdiction,tier\nACME GmbH,DE,1\nGlobal Supply Inc,US,1\nEastern Trading,CN,2\n"
    "Nordic Materials AB,SE,1\nSouth Asian Textiles,BD,2\n"
)
UBOS = "name,birthdate,citizenship\nMax Mustermann,1970-05-15,DE\nJane Doe,1985-11-22,US\n"


def test_original_flat_vectors():
    c = commit(parse_suppliers(SUPPLIERS), parse_ubos(UBOS), RootScheme.FLAT, "2025-01-01T00:00:00Z")
    assert c.supplier_root == "0xdde3f2c96c5ffc46eef6af7fe449ba6c575b71eff26d0829ce6d48872b2f1610"
    assert c.ubo_root == "0xf89ea642046c73faa32494ed30672c7a7a7f764e399d1fb6d1c342ff3e7bf846"
    assert c.company_commitment_root == "0x83a8779d0d7e3a7590133318265569f2651a4f8090afcae880741efcfc898ae5"
    assert (c.supplier_count, c.ubo_count) == (5, 2)


def test_original_first_leaf():
    first = parse_suppliers(SUPPLIERS)[0]
    assert (
        supplier_leaf_bytes(first.name, first.jurisdiction, first.tier)
        == b'{"name":"ACME GmbH","jurisdiction":"DE","tier":1}'
    )
    assert supplier_leaf(first).hex() == "31942afffb1e91955bc3ba208797f071874c442f4133bb9e49cce062580b40d3"


def test_empty_lists_give_blake3_of_nothing_in_flat_scheme():
    c = commit([], [], RootScheme.FLAT, "t")
    assert c.supplier_root == "0xaf1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


def test_merkle_scheme_differs_from_flat_and_is_order_sensitive():
    s, u = parse_suppliers(SUPPLIERS), parse_ubos(UBOS)
    merkle = commit(s, u, RootScheme.MERKLE, "t")
    assert merkle.supplier_root != commit(s, u, RootScheme.FLAT, "t").supplier_root
    assert commit(list(reversed(s)), u, RootScheme.MERKLE, "t").supplier_root != merkle.supplier_root


@given(st.text(), st.text(), st.integers(1, 10**9))
def test_fast_leaf_encoding_equals_canonical_json(name, jurisdiction, tier):
    record = Supplier(name=name, jurisdiction=jurisdiction, tier=tier)
    assert supplier_leaf_bytes(name, jurisdiction, tier) == canonical_bytes(record)


@given(st.text(), st.text(), st.text())
def test_fast_ubo_encoding_equals_canonical_json(name, birthdate, citizenship):
    from core.commitments import Ubo

    assert ubo_leaf_bytes(name, birthdate, citizenship) == canonical_bytes(
        Ubo(name=name, birthdate=birthdate, citizenship=citizenship)
    )


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        pytest.param("name,tier\nA,1\n", 1, "jurisdiction", id="missing_column"),
        pytest.param("name,jurisdiction,tier\nA,DE,one\n", 2, "tier", id="non_integer_tier"),
        pytest.param("name,jurisdiction,tier\nA,DE,1\nB,DE,0\n", 3, "tier", id="zero_tier"),
        pytest.param("name,jurisdiction,tier\nA,DE,-1\n", 2, "tier", id="negative_tier"),
        pytest.param("name,jurisdiction,tier\nA,XX,1\n", 2, "jurisdiction", id="bad_country_code"),
        pytest.param("name,jurisdiction,tier\nA,de,1\n", 2, "jurisdiction", id="lowercase_country_code"),
        pytest.param("name,jurisdiction,tier\n,DE,1\n", 2, "name", id="empty_name"),
        pytest.param("name,jurisdiction,tier\nA,DE\n", 2, "tier", id="short_row"),
        pytest.param("", 1, None, id="empty_file"),
    ],
)
def test_bad_supplier_rows_name_line_and_column(text, line, column):
    with pytest.raises(InvalidInputError) as err:
        parse_suppliers(text, "suppliers.csv")
    d = err.value.details
    assert (d["file"], d["line"], d.get("column")) == ("suppliers.csv", line, column)
    assert "suppliers.csv" in err.value.diagnostics()


@pytest.mark.parametrize(
    ("text", "column"),
    [
        pytest.param("name,birthdate,citizenship\nA,1970-13-01,DE\n", "birthdate", id="bad_month"),
        pytest.param("name,birthdate,citizenship\nA,15.05.1970,DE\n", "birthdate", id="not_iso"),
        pytest.param("name,birthdate,citizenship\nA,1970-5-1,DE\n", "birthdate", id="unpadded"),
        pytest.param(
            "name,birthdate,citizenship\nA,1970-05-15,Germany\n", "citizenship", id="bad_citizenship"
        ),
    ],
)
def test_bad_ubo_rows(text, column):
    with pytest.raises(InvalidInputError) as err:
        parse_ubos(text, "ubos.csv")
    assert err.value.details["column"] == column and err.value.details["line"] == 2


def test_bom_quoted_commas_non_ascii_and_extra_columns_work(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes(
        '\ufeffname,jurisdiction,tier,city\n"Müller, Söhne & Co",DE,2,Köln\nŁódź Tekstil,PL,1,x\n'.encode(
            "utf-8"
        )
    )
    rows = read_suppliers(path)
    assert [(r.name, r.jurisdiction, r.tier) for r in rows] == [
        ("Müller, Söhne & Co", "DE", 2),
        ("Łódź Tekstil", "PL", 1),
    ]


def test_quoted_multiline_field_reports_the_right_line():
    text = 'name,jurisdiction,tier\n"A\nB",DE,1\nC,DE,x\n'
    with pytest.raises(InvalidInputError) as err:
        parse_suppliers(text, "s.csv")
    assert err.value.details["line"] == 4


def test_missing_file_and_non_utf8(tmp_path):
    with pytest.raises(InvalidInputError, match="not found"):
        read_ubos(tmp_path / "nope.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("name,birthdate,citizenship\nM\xfcller,1970-01-01,DE\n".encode("latin-1"))
    with pytest.raises(InvalidInputError, match="UTF-8"):
        read_ubos(bad)


def test_unknown_scheme_is_a_clear_error():
    with pytest.raises(InvalidInputError, match="unknown root scheme"):
        RootScheme.parse("sha1")
