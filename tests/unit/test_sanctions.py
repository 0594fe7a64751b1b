"""List readers on the real fixtures, and every malformed input naming its file, line and field."""

from pathlib import Path

import pytest

from core.errors import InvalidInputError, NotFoundError
from core.sanctions import (
    ListFormat,
    RiskLevel,
    SanctionsEntry,
    flat_sanctions_root,
    jurisdiction_root,
    load_source,
    read_high_risk,
    read_ofac,
    read_sanctions,
    read_simple_csv,
    read_un_xml,
)
from tests.paths import FIXTURES

SDN = FIXTURES / "ofac" / "sdn.csv"
UN = FIXTURES / "un_consolidated_extract.xml"
EMPTY_ROOT = "0xaf1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


def _by_id(entries: list[SanctionsEntry]) -> dict[str, SanctionsEntry]:
    return {e.entry_id: e for e in entries}


def _write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# ------------------------------------------------------------------------------------ fixtures


def test_ofac_fixture_reads_17_entries_with_aliases_joined():
    entries = _by_id(read_ofac(SDN))
    assert len(entries) == 17
    assert entries["10278"].primary_name == "LOGAN MOREY, Elvis Angus"
    assert entries["10278"].birthdate == "28 Jul 1963"
    assert entries["11195"].aliases == (
        "HESA TRADE CENTER",
        "IRAN AIRCRAFT MANUFACTURING INDUSTRIES",
        "IRAN AIRCRAFT MANUFACTURING COMPANY",
        "KARKHANEJATE SANAYE HAVAPAYMAIE IRAN",
    )
    assert entries["48603"].aliases[0] == "KHOROSHEV, Dmitriy Yurevich"
    assert entries["48603"].nationality == "Russia"
    assert all(e.source == "ofac" for e in entries.values())


def test_ofac_orphan_aliases_are_ignored():
    entries = _by_id(read_ofac(SDN))
    assert "10416" not in entries and "11935" not in entries
    assert all("KARADH AL-HASSAN" not in e.aliases for e in entries.values())


def test_ofac_without_alt_file_has_no_aliases(tmp_path):
    sdn = _write(tmp_path, "sdn.csv", SDN.read_bytes())
    assert all(e.aliases == () for e in read_ofac(sdn))


def test_ofac_explicit_alt_path_must_exist(tmp_path):
    with pytest.raises(NotFoundError):
        read_ofac(SDN, tmp_path / "missing_alt.csv")


def test_un_fixture_reads_individuals_and_entities():
    entries = _by_id(read_un_xml(UN))
    assert len(entries) == 9
    assert entries["TAi.165"].primary_name == "MOHAMMED QASIM MIR WALI KHUDAI RAHIM"
    assert entries["TAi.165"].aliases == ("Muhammad Qasim", "Abdul Salam", "محمد قاسم میر ولی خدايرحيم")
    assert entries["TAi.165"].birthdate == "1975/1976"
    assert entries["KPi.006"].birthdate == "1964-06-18"
    assert entries["CDi.001"].aliases == ()  # empty placeholder alias dropped
    assert entries["KPe.002"].aliases == (
        "KOREA YONBONG GENERAL CORPORATION",
        "LYONGAKSAN GENERAL TRADING CORPORATION",
    )
    assert entries["QDi.001"].nationality == "Egypt"


def test_read_sanctions_dispatches_by_format():
    assert len(read_sanctions(SDN, ListFormat.OFAC)) == 17
    assert len(read_sanctions(UN, "un")) == 9


def test_load_source_hashes_the_bytes_it_parsed():
    loaded = load_source(SDN, ListFormat.OFAC)
    assert loaded.source.path == "sdn.csv" and loaded.source.entries == 17
    assert loaded.source.sha3_256.startswith("sha3-256:") and loaded.source.alt_path == "alt.csv"


def test_simple_csv_with_bom_and_extra_columns(tmp_path):
    path = _write(
        tmp_path, "s.csv", "\ufeffname,birthdate,nationality,extra\nAcme Ltd,,DE,x\nJane Roe,1970-01-01,,y\n"
    )
    entries = read_simple_csv(path)
    assert [e.primary_name for e in entries] == ["Acme Ltd", "Jane Roe"]
    assert entries[0].birthdate is None and entries[0].nationality == "DE"
    assert entries[1].entry_id == "s.csv:3"


def test_high_risk_reads_levels(tmp_path):
    path = _write(tmp_path, "hr.csv", "iso_code,risk_level\nIR,HIGH\nKP,HIGH\nTR,MEDIUM\nDE,LOW\n")
    assert read_high_risk(path) == {
        "IR": RiskLevel.HIGH,
        "KP": RiskLevel.HIGH,
        "TR": RiskLevel.MEDIUM,
        "DE": RiskLevel.LOW,
    }


def test_flat_root_matches_the_original_rule():
    from core.digest import blake3_hex

    entries = [
        SanctionsEntry(source="csv", entry_id="1", primary_name="A", birthdate="2000-01-01", nationality="DE")
    ]
    leaf = blake3_hex(b"A|2000-01-01|DE")
    assert flat_sanctions_root(entries) == blake3_hex(leaf.encode())
    assert flat_sanctions_root([]) == EMPTY_ROOT


def test_jurisdiction_root_is_order_independent():
    a = jurisdiction_root({"IR": RiskLevel.HIGH, "DE": RiskLevel.LOW})
    assert a == jurisdiction_root({"DE": RiskLevel.LOW, "IR": RiskLevel.HIGH})
    assert a != jurisdiction_root({"DE": RiskLevel.HIGH, "IR": RiskLevel.HIGH})


# ---------------------------------------------------------------------------------- bad input


def _error(fn, *args) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as info:
        fn(*args)
    return info.value


@pytest.mark.parametrize(
    ("content", "line", "field"),
    [
        pytest.param('10278,"LOGAN MOREY, Elvis Angus","individual"\r\n', 1, None, id="too_few_fields"),
        pytest.param(
            SDN.read_text().splitlines()[0]
            + '\r\nX1,"A",-0- ,"P",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n',
            2,
            "ent_num",
            id="ent_num_not_a_number",
        ),
        pytest.param(
            '1,-0- ,-0- ,"P",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n', 1, "SDN_Name", id="null_name"
        ),
        pytest.param(
            '1,"A",-0- ,"P",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n'
            '1,"B",-0- ,"P",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n',
            2,
            "ent_num",
            id="duplicate_ent_num",
        ),
    ],
)
def test_malformed_ofac_row_names_file_line_field(tmp_path, content, line, field):
    err = _error(read_ofac, _write(tmp_path, "sdn.csv", content))
    assert err.details["file"] == "sdn.csv" and err.details["line"] == line
    assert err.details.get("field") == field
    assert "sdn.csv" in err.diagnostics()


def test_malformed_alt_row_names_alt_file(tmp_path):
    sdn = _write(tmp_path, "sdn.csv", SDN.read_bytes())
    _write(tmp_path, "alt.csv", '11195,11591,"aka",-0- ,-0- \r\n')
    err = _error(read_ofac, sdn)
    assert err.details == {"file": "alt.csv", "line": 1, "field": "alt_name", "expected": "a name"}


def test_bad_xml_names_line(tmp_path):
    err = _error(
        read_un_xml, _write(tmp_path, "un.xml", "<CONSOLIDATED_LIST>\n<INDIVIDUALS>\n</CONSOLIDATED_LIST>")
    )
    assert err.details["file"] == "un.xml" and err.details["line"] == 3


@pytest.mark.parametrize(
    "prolog",
    [
        pytest.param('<!DOCTYPE x [<!ENTITY a "aaaa">]>', id="internal_entity"),
        pytest.param('<!DOCTYPE x SYSTEM "file:///etc/passwd">', id="external_dtd"),
    ],
)
def test_xml_doctype_is_refused(tmp_path, prolog):
    path = _write(tmp_path, "un.xml", f'<?xml version="1.0"?>\n{prolog}\n<CONSOLIDATED_LIST/>')
    err = _error(read_un_xml, path)
    assert "DOCTYPE" in err.message and err.details["file"] == "un.xml" and err.details["line"] == 2


def test_un_entry_without_name_names_line(tmp_path):
    xml = (
        "<CONSOLIDATED_LIST><INDIVIDUALS>\n<INDIVIDUAL><REFERENCE_NUMBER>X.1</REFERENCE_NUMBER></INDIVIDUAL>"
        "</INDIVIDUALS></CONSOLIDATED_LIST>"
    )
    err = _error(read_un_xml, _write(tmp_path, "un.xml", xml))
    assert err.details["line"] == 2 and err.details["field"] == "FIRST_NAME"


def test_un_wrong_root_refused(tmp_path):
    err = _error(read_un_xml, _write(tmp_path, "un.xml", "<export/>"))
    assert err.details["field"] == "root"


@pytest.mark.parametrize(
    ("reader", "name"),
    [
        pytest.param(read_ofac, "sdn.csv", id="ofac"),
        pytest.param(read_un_xml, "un.xml", id="un"),
        pytest.param(read_simple_csv, "s.csv", id="csv"),
        pytest.param(read_high_risk, "hr.csv", id="high_risk"),
    ],
)
def test_empty_file_is_a_clear_error(tmp_path, reader, name):
    err = _error(reader, _write(tmp_path, name, "\r\n"))
    assert "empty" in err.message and err.details["file"].endswith(name)


def test_header_only_csv_is_an_error(tmp_path):
    err = _error(read_simple_csv, _write(tmp_path, "s.csv", "name,birthdate,nationality\n"))
    assert "no entries" in err.message


def test_missing_file_is_not_found(tmp_path):
    with pytest.raises(NotFoundError):
        read_un_xml(tmp_path / "nope.xml")


def test_simple_csv_missing_column_and_empty_name(tmp_path):
    err = _error(read_simple_csv, _write(tmp_path, "s.csv", "name,birthdate\nA,B\n"))
    assert err.details["line"] == 1 and err.details["field"] == "nationality"
    err = _error(
        read_simple_csv, _write(tmp_path, "s.csv", "name,birthdate,nationality\nA,,\n  ,1970-01-01,DE\n")
    )
    assert err.details["line"] == 3 and err.details["field"] == "name"


@pytest.mark.parametrize(
    ("row", "field"),
    [
        pytest.param("IR,CRITICAL", "risk_level", id="bad_level"),
        pytest.param("Iran,HIGH", "iso_code", id="code_not_alpha2"),
        pytest.param("ir,HIGH", "iso_code", id="code_lowercase"),
        pytest.param("DE,LOW\nDE,LOW", "iso_code", id="code_repeated"),
    ],
)
def test_bad_high_risk_row_names_file_line_field(tmp_path, row, field):
    path = _write(tmp_path, "hr.csv", f"iso_code,risk_level\nKP,HIGH\n{row}\n")
    err = _error(read_high_risk, path)
    assert err.details["file"] == "hr.csv" and err.details["field"] == field
    assert err.details["line"] == 3 + row.count("\n")


@pytest.mark.parametrize(
    ("original", "aliases"),
    [
        pytest.param("راحت لمتد", ("راحت لمتد",), id="arabic_is_an_alias"),
        pytest.param("-", (), id="placeholder_is_not_a_name"),
        pytest.param("", (), id="empty"),
    ],
)
def test_un_name_original_script_becomes_an_alias(tmp_path, original, aliases):
    xml = (
        "<CONSOLIDATED_LIST><ENTITIES><ENTITY><REFERENCE_NUMBER>TAe.013</REFERENCE_NUMBER>"
        f"<FIRST_NAME>RAHAT LTD.</FIRST_NAME><NAME_ORIGINAL_SCRIPT>{original}</NAME_ORIGINAL_SCRIPT>"
        "</ENTITY></ENTITIES></CONSOLIDATED_LIST>"
    )
    (entry,) = read_un_xml(_write(tmp_path, "un.xml", xml))
    assert entry.aliases == aliases
