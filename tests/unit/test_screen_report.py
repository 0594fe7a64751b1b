"""The prover's screening report: rows, lines, listed names, lists, scores, exact/near; bad input named."""

from __future__ import annotations

import pytest

from core import service
from core.commitments import SUPPLIER_COLUMNS, UBO_COLUMNS, record_lines
from core.errors import InvalidInputError
from core.name_keys import CURRENT_KEY_VERSION
from core.sanctions import ListFormat
from core.screen_report import MatchKind, Party, ScreenedRow, screen_rows
from tests.paths import FIXTURES
from tests.world import NOW

SUPPLIERS = (
    "name,jurisdiction,tier\n"
    "ACME GmbH,DE,1\n"
    "\u0399RAN AIRCRAFT MANUFACTURING INDUSTRIAL COMPANY,IR,1\n"
    "\n"
    "Elvis Angus Logan Morez,US,1\n"
    '"Nordic, Materials AB",SE,1\n'
)
UBOS = "name,birthdate,citizenship\nMax Mustermann,1970-05-15,DE\nХорошев Дмитрий Юрьевич,1993-04-17,RU\n"


@pytest.fixture(scope="module")
def lists():
    sources = [
        (FIXTURES / "ofac" / "sdn.csv", ListFormat.OFAC),
        (FIXTURES / "un_consolidated_extract.xml", ListFormat.UN),
    ]
    return service.build_lists_file(sources, None, NOW)


@pytest.fixture
def files(tmp_path):
    suppliers, ubos = tmp_path / "suppliers.csv", tmp_path / "ubos.csv"
    suppliers.write_text(SUPPLIERS, encoding="utf-8")
    ubos.write_text(UBOS, encoding="utf-8")
    return suppliers, ubos


def test_record_lines_follow_the_parsers_skipping_blank_lines(files):
    suppliers, ubos = files
    assert record_lines(suppliers, SUPPLIER_COLUMNS) == [2, 3, 5, 6]
    assert record_lines(ubos, UBO_COLUMNS) == [2, 3]


def test_report_names_row_listed_name_list_score_and_kind(lists, files):
    suppliers, ubos = files
    report = service.screen_files(suppliers, ubos, lists)
    assert lists.version is CURRENT_KEY_VERSION and report.key_version is CURRENT_KEY_VERSION
    assert (report.suppliers, report.ubos, report.sanctions_root) == (4, 2, lists.sanctions_root)
    first = report.findings[0]
    assert (first.party, first.line, first.kind, first.score_bp) == (
        Party.SUPPLIER,
        3,
        MatchKind.EXACT,
        10000,
    )
    assert (
        first.name.startswith("\u0399RAN") and first.listed_name == "aircraft industrial iran manufacturing"
    )
    assert (first.lists, first.refs, first.file) == (("ofac",), ("ofac:11195",), str(suppliers))
    near = [f for f in report.findings if f.line == 5]
    assert [(f.kind, f.listed_name, f.refs) for f in near] == [
        (MatchKind.NEAR, "angus elvis logan morey", ("ofac:10278",))
    ]
    assert 9000 <= near[0].score_bp < 10000
    ubo_hits = [f for f in report.findings if f.party is Party.UBO and f.kind is MatchKind.EXACT]
    assert [(f.line, f.refs) for f in ubo_hits] == [(3, ("ofac:48603",))]
    assert {f.line for f in report.findings if f.party is Party.SUPPLIER} == {3, 5}  # ACME, Nordic: clean
    assert (report.exact, report.near) == (2, len(report.findings) - 2)


def test_findings_are_in_row_order_exact_first(lists, files):
    report = service.screen_files(*files, lists)
    keys = [(f.party is Party.UBO, f.line, f.kind is MatchKind.NEAR) for f in report.findings]
    assert keys == sorted(keys)


def test_clean_rows_give_an_empty_report(lists, tmp_path):
    suppliers = tmp_path / "s.csv"
    suppliers.write_text(
        "name,jurisdiction,tier\nACME GmbH,DE,1\nSouth Asian Textiles,BD,2\n", encoding="utf-8"
    )
    report = service.screen_files(suppliers, None, lists)
    assert report.findings == () and report.exact == report.near == 0 and report.ubos == 0


def test_a_v1_list_screens_under_v1_and_misses_the_homoglyph(lists, files):
    v1 = service.build_lists_file([(FIXTURES / "ofac" / "sdn.csv", ListFormat.OFAC)], None, NOW)
    old = v1.model_copy(update={"key_version": None})  # a file from before v2: names are ASCII, so valid
    report = screen_rows(
        old.sanctions_list(),
        [ScreenedRow(Party.SUPPLIER, "s.csv", 2, SUPPLIERS.splitlines()[2].split(",")[0])],
    )
    assert report.key_version.value == "screening-key.v1" and report.exact == 0


def test_nameless_name_is_refused_naming_file_and_line(lists, tmp_path):
    suppliers = tmp_path / "s.csv"
    suppliers.write_text("name,jurisdiction,tier\nACME GmbH,DE,1\n--- ,DE,1\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="no letters or digits") as exc:
        service.screen_files(suppliers, None, lists)
    assert (exc.value.details["file"], exc.value.details["line"]) == (str(suppliers), 3)


def test_threshold_out_of_range_is_refused(lists, files):
    with pytest.raises(InvalidInputError, match="threshold"):
        service.screen_files(*files, lists, threshold=0.4)
