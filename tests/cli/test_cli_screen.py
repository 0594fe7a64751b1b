"""``cap screen`` in a subprocess on the real OFAC and UN extracts: report, --json, exit codes, bad input."""

from __future__ import annotations

import json

from tests.cli.test_cli_lifecycle import SUPPLIERS, UBOS, _lists, _prove
from tests.paths import FIXTURES

HOMOGLYPH = "\u0399RAN AIRCRAFT MANUFACTURING INDUSTRIAL COMPANY,IR,1\n"  # Greek capital Iota
NEAR_ONLY = "Elvis Angus Logan Morez,US,1\n"


def _screen(cap, suppliers_text, *extra):
    suppliers = cap.write("suppliers.csv", suppliers_text)
    ubos = cap.write("ubos.csv", UBOS)
    lists = cap.root / "build" / "lists.json"
    return cap("screen", "--suppliers", suppliers, "--ubos", ubos, "--lists", lists, *extra)


def test_refused_proof_points_at_cap_screen_which_names_the_row(cap):
    assert cap("keys", "keygen", "--owner", "Test GmbH").code == 0
    assert _lists(cap)["key_version"] == "screening-key.v2"
    refused = _prove(cap, SUPPLIERS + HOMOGLYPH, "--enforce", "--enforce-mode", "strict")
    assert refused.code == 3 and "no_sanctioned_suppliers" in refused.stderr
    assert "cap screen --suppliers" in refused.stderr
    assert not (cap.root / "build" / "proof.json").exists()

    r = _screen(cap, SUPPLIERS + HOMOGLYPH, "--json")
    assert r.code == 3, r.stderr
    doc = r.json()
    line = len(SUPPLIERS.splitlines()) + 1
    (exact,) = [f for f in doc["findings"] if f["kind"] == "exact"]
    assert exact == {
        "party": "supplier",
        "file": str(cap.root / "suppliers.csv"),
        "line": line,
        "name": HOMOGLYPH.split(",")[0],
        "listed_name": "aircraft industrial iran manufacturing",
        "lists": ["ofac"],
        "refs": ["ofac:11195"],
        "score_bp": 10000,
        "kind": "exact",
    }
    assert doc["key_version"] == "screening-key.v2" and doc["exact"] == 1
    assert not (cap.root / "build" / "proof.json").exists()  # a report, never a proof

    human = _screen(cap, SUPPLIERS + HOMOGLYPH)
    assert human.code == 3
    assert (
        f"suppliers.csv:{line}" in human.stdout and "ofac:11195" in human.stdout and "exact" in human.stdout
    )
    assert "never part of a proof" in human.stdout


def test_clean_and_near_only_exit_0(cap):
    _lists(cap)
    clean = _screen(cap, SUPPLIERS, "--json")
    assert clean.code == 0, clean.stderr
    assert clean.json()["findings"] == [] and clean.json()["exact"] == 0
    near = _screen(cap, SUPPLIERS + NEAR_ONLY, "--json")
    assert near.code == 0
    assert [(f["kind"], f["refs"]) for f in near.json()["findings"]] == [("near", ["ofac:10278"])]


def test_screen_from_a_raw_sanctions_list(cap):
    suppliers = cap.write("suppliers.csv", SUPPLIERS + "R\u0430hat Ltd,AF,1\n")  # Cyrillic small a
    r = cap(
        "screen",
        "--suppliers",
        suppliers,
        "--sanctions",
        FIXTURES / "un_consolidated_extract.xml",
        "--format",
        "un",
        "--json",
    )
    assert r.code == 3, r.stderr
    assert [f["refs"] for f in r.json()["findings"] if f["kind"] == "exact"] == [["un:TAe.013"]]


def test_bad_input_exits_2_or_4_and_names_the_place(cap):
    _lists(cap)
    nameless = _screen(cap, SUPPLIERS + "--- ,DE,1\n")
    assert (
        nameless.code == 2
        and "suppliers.csv" in nameless.stderr
        and "no letters or digits" in nameless.stderr
    )
    assert "Traceback" not in nameless.stderr
    no_lists = cap("screen", "--suppliers", cap.write("s.csv", SUPPLIERS))
    assert no_lists.code == 2 and "--lists" in no_lists.stderr
    lists_path = cap.root / "build" / "lists.json"
    doc = json.loads(lists_path.read_text(encoding="utf-8"))
    doc["key_version"] = "screening-key.v9"
    lists_path.write_text(json.dumps(doc), encoding="utf-8")
    unknown = _screen(cap, SUPPLIERS)
    assert unknown.code == 2 and "lists.json" in unknown.stderr and "screening-key.v2" in unknown.stderr
