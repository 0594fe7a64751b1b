"""Normalisation, keys, the sorted tree, (non-)membership proofs, near matches, screening, lists files."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import Indel

from core.errors import IntegrityError, InvalidInputError
from core.merkle import EMPTY_ROOT
from core.name_keys import KeyVersion, _fold, _fold_unicode, normalise_name, screening_key
from core.sanctions import (
    ListFormat,
    RiskLevel,
    SanctionsEntry,
    flat_sanctions_root,
    jurisdiction_root,
    load_source,
    read_ofac,
    read_un_xml,
)
from core.screening import (
    LISTS_SCHEMA,
    MembershipProof,
    Neighbour,
    NonMembershipProof,
    SanctionsList,
    build_lists,
    load_lists,
    save_lists,
    verify_membership,
    verify_non_membership,
)
from tests.paths import FIXTURES
from tests.vectorgen import VECTORS_DIR

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def fixture_list() -> SanctionsList:
    entries = read_ofac(FIXTURES / "ofac" / "sdn.csv") + read_un_xml(FIXTURES / "un_consolidated_extract.xml")
    return SanctionsList.from_entries(entries, ["ofac", "un"])


# -------------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        pytest.param("LOGAN MOREY, Elvis Angus", "angus elvis logan morey", id="surname_first"),
        pytest.param("elvis  angus LOGAN morey", "angus elvis logan morey", id="order_and_case"),
        pytest.param("Müller", "muller", id="umlaut_nfkd"),
        pytest.param("Mueller", "mueller", id="ue_not_folded"),
        pytest.param("Raúl HERNÁNDEZ", "hernandez raul", id="acute"),
        pytest.param("Straße", "strasse", id="sharp_s_casefold"),
        pytest.param("İstanbul", "istanbul", id="dotted_capital_i"),
        pytest.param("ＡＣＭＥ", "acme", id="fullwidth"),
        pytest.param("Acme GmbH", "acme", id="gmbh"),
        pytest.param("ACME Holding AG", "acme holding", id="ag"),
        pytest.param("Acme Co., Ltd.", "acme", id="co_ltd"),
        pytest.param("TNK TRADING INTERNATIONAL S.A.", "international tnk trading", id="dotted_sa"),
        pytest.param("SUEX OTC, S.R.O.", "otc suex", id="dotted_sro"),
        pytest.param("Ørsted A/S", "ørsted", id="slashed_as"),
        pytest.param("Acme Limited Company", "acme", id="limited_company"),
        pytest.param("AG", "ag", id="only_legal_forms_kept"),
        pytest.param("Paek Ch'ang-Ho", "chang ho paek", id="apostrophe_deleted"),
        pytest.param("Paek Ch’ang-Ho", "chang ho paek", id="curly_apostrophe_deleted"),
        pytest.param("P-532", "532 p", id="digits_kept"),
        pytest.param(
            "AIRCRAFT, AVIONICS, PARTS & SUPPORT LTD.", "aircraft avionics parts support", id="ampersand"
        ),
        pytest.param("Elvis A. Morey", "a elvis morey", id="initial"),
        pytest.param("...", "", id="nothing_left"),
    ],
)
def test_normalise_name(raw, normalised):
    assert normalise_name(raw) == normalised


def test_reordered_names_share_a_key():
    assert screening_key("LOGAN MOREY, Elvis Angus") == screening_key("Elvis Angus Logan Morey")
    assert len(screening_key("x")) == 32


def test_name_without_letters_has_no_key():
    with pytest.raises(InvalidInputError):
        screening_key(" - ")


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
def test_ascii_fast_path_equals_unicode_path(text):
    assert _fold(text) == _fold_unicode(text)


@given(st.text(max_size=40))
def test_normalisation_is_idempotent(text):
    once = normalise_name(text)
    assert normalise_name(once) == once


# ---------------------------------------------------------------------------------- exact hits


def test_ofac_alias_in_other_order_and_case_is_exact_hit(fixture_list):
    report = fixture_list.screen(["dmitriy yurevich KHOROSHEV", "Unrelated Bakery GmbH"])
    assert [(h.query_index, h.refs) for h in report.hits] == [(0, ("ofac:48603",))]
    assert fixture_list.contains(screening_key("Yurevich Dmitriy Khoroshev"))


def test_every_alias_contributes_a_key(fixture_list):
    for alias in ("HESA TRADE CENTER", "Muhammad Qasim", "LYONGAKSAN GENERAL TRADING CORPORATION"):
        assert fixture_list.contains(screening_key(alias)), alias


def test_shared_normalised_name_keeps_all_refs():
    entries = [
        SanctionsEntry(source="a", entry_id="1", primary_name="Acme GmbH"),
        SanctionsEntry(source="b", entry_id="2", primary_name="ACME Ltd", aliases=("Acme",)),
    ]
    sl = SanctionsList.from_entries(entries, ["a", "b"])
    assert sl.count == 1 and sl.refs == (("a:1", "b:2"),)


# ------------------------------------------------------------------------------- near matches


def test_near_match_finds_one_letter_typo(fixture_list):
    matches = fixture_list.near_matches("Elvis Angus Logan Morez")
    assert [(m.candidate, m.refs) for m in matches] == [("angus elvis logan morey", ("ofac:10278",))]
    assert 9000 <= matches[0].score_bp < 10000


def test_screen_reports_possible_matches_and_never_drops_them(fixture_list):
    report = fixture_list.screen(["Elvis Angus Logan Morez", "Mueller", "Khoroshev Dmitriy Yurevich"])
    assert any(m.query_index == 0 and m.refs == ("ofac:10278",) for m in report.possible_matches)
    # the exact hit is a violation; other spellings of the same entry stay as possible matches
    assert [h.query_index for h in report.hits] == [2]
    assert {m.candidate for m in report.possible_matches if m.query_index == 2} >= {
        "dmitry khoroshev yuryevich"
    }
    assert not report.clear


def test_threshold_out_of_range_is_refused(fixture_list):
    with pytest.raises(InvalidInputError):
        fixture_list.near_matches("x", threshold=0.4)


def _brute_force(sl: SanctionsList, query: str, bp: int) -> set[str]:
    out = set()
    for name in sl.names:
        total = len(query) + len(name)
        if 10000 * (total - Indel.distance(query, name)) >= bp * total:
            out.add(name)
    return out


WORD = st.text(alphabet="abcde", min_size=1, max_size=7)
NAME = st.lists(WORD, min_size=1, max_size=4).map(" ".join)
PLAIN_NAME = st.lists(st.text(alphabet="dfhqx", min_size=1, max_size=7), min_size=1, max_size=4).map(" ".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(NAME, min_size=1, max_size=30),
    query=NAME,
    threshold=st.sampled_from([0.6, 0.75, 0.8, 0.9, 0.95, 1.0]),
)
def test_near_matches_equal_brute_force(names, query, threshold):
    entries = [SanctionsEntry(source="t", entry_id=str(i), primary_name=n) for i, n in enumerate(names)]
    sl = SanctionsList.from_entries(entries, ["t"])
    normalised = normalise_name(query)
    found = {m.candidate for m in sl.near_matches(query, threshold)}
    assert found == _brute_force(sl, normalised, round(threshold * 10000))


@settings(max_examples=60, deadline=None)
@given(names=st.lists(PLAIN_NAME, min_size=1, max_size=30), data=st.data())
def test_typo_of_a_listed_name_is_found(names, data):
    sl = SanctionsList.from_entries(
        [SanctionsEntry(source="t", entry_id=str(i), primary_name=n) for i, n in enumerate(names)], ["t"]
    )
    target = data.draw(st.sampled_from(sl.names))
    typo = target + target[-1]  # one edit that keeps the token order
    assert normalise_name(typo) == typo
    found = {m.candidate for m in sl.near_matches(typo, 0.8)}
    assert target in found or len(target) < 2  # distance 1 scores 1 - 1/(2L+1) >= 0.8 from L = 2


# -------------------------------------------------------------------------------------- proofs

KEYS = st.sets(st.binary(min_size=32, max_size=32), max_size=24)


def _list_of(keys: set[bytes]) -> SanctionsList:
    sl = SanctionsList({}, [])
    sl.keys = tuple(sorted(keys))
    from core.merkle import MerkleTree

    sl.tree = MerkleTree(sl.keys)
    return sl


@given(keys=KEYS, probe=st.binary(min_size=32, max_size=32))
def test_non_membership_verifies_for_absent_keys(keys, probe):
    keys.discard(probe)
    sl = _list_of(keys)
    proof = sl.prove_absent(probe)
    assert verify_non_membership(probe, proof, sl.root)
    assert (
        not verify_membership(probe, MembershipProof(key="0x" + probe.hex(), proof=sl.tree.prove(0)), sl.root)
        if sl.count
        else True
    )


def _every_candidate_proof(sl: SanctionsList, key: bytes) -> list[NonMembershipProof]:
    """Every proof an attacker could assemble from genuine leaves and their inclusion proofs."""
    hexed = "0x" + key.hex()
    n = [sl._neighbour(i) for i in range(sl.count)]
    proofs = [
        NonMembershipProof(key=hexed, tree_size=sl.count, predecessor=n[-1]),
        NonMembershipProof(key=hexed, tree_size=sl.count, successor=n[0]),
        NonMembershipProof(key=hexed, tree_size=0),
    ]
    proofs += [
        NonMembershipProof(key=hexed, tree_size=sl.count, predecessor=n[i], successor=n[j])
        for i in range(sl.count)
        for j in range(sl.count)
    ]
    return proofs


@settings(max_examples=60)
@given(keys=KEYS.filter(bool), data=st.data())
def test_no_proof_of_absence_for_a_present_key(keys, data):
    sl = _list_of(keys)
    present = data.draw(st.sampled_from(sl.keys))
    with pytest.raises(InvalidInputError) as info:
        sl.prove_absent(present)
    assert info.value.code == "key_is_listed"
    assert not any(verify_non_membership(present, p, sl.root) for p in _every_candidate_proof(sl, present))
    assert verify_membership(present, sl.prove_present(present), sl.root)


def _tamper(proof: NonMembershipProof, which: str, how: str, size: int) -> NonMembershipProof | None:
    side: Neighbour | None = getattr(proof, which)
    if side is None:
        return None
    if how == "path":
        if not side.proof.path:
            return None
        path = list(side.proof.path)
        path[0] = path[0][:-1] + ("0" if path[0][-1] != "0" else "1")
        changed = side.model_copy(update={"proof": side.proof.model_copy(update={"path": path})})
    elif how == "index":
        index = (side.index + 1) % max(size, 1)
        if index == side.index:
            return None
        changed = side.model_copy(
            update={"index": index, "proof": side.proof.model_copy(update={"index": index})}
        )
    else:
        key = side.key[:-1] + ("0" if side.key[-1] != "0" else "1")
        changed = side.model_copy(update={"key": key})
    return proof.model_copy(update={which: changed})


@settings(max_examples=100)
@given(
    keys=KEYS.filter(lambda k: len(k) >= 2),
    probe=st.binary(min_size=32, max_size=32),
    which=st.sampled_from(["predecessor", "successor"]),
    how=st.sampled_from(["path", "index", "key"]),
)
def test_tampered_proof_fails(keys, probe, which, how):
    keys.discard(probe)
    sl = _list_of(keys)
    forged = _tamper(sl.prove_absent(probe), which, how, sl.count)
    if forged is not None:
        assert not verify_non_membership(probe, forged, sl.root)


def test_empty_list_proof():
    sl = SanctionsList({}, [])
    proof = sl.prove_absent(bytes(32))
    assert proof.tree_size == 0 and proof.predecessor is None and proof.successor is None
    assert sl.root == EMPTY_ROOT and verify_non_membership(bytes(32), proof, EMPTY_ROOT)
    assert not verify_non_membership(bytes(32), proof, b"\x01" * 32)


def test_prove_present_of_absent_key_is_refused(fixture_list):
    with pytest.raises(InvalidInputError) as info:
        fixture_list.prove_present(screening_key("nobody at all"))
    assert info.value.code == "key_not_listed"


def test_short_key_is_refused(fixture_list):
    with pytest.raises(InvalidInputError):
        fixture_list.contains(b"abc")


# --------------------------------------------------------------------------------- lists file


def _lists(fixture_list: SanctionsList):
    source = load_source(FIXTURES / "ofac" / "sdn.csv", ListFormat.OFAC).source
    return build_lists(fixture_list, [source], NOW, {"KP": RiskLevel.HIGH, "DE": RiskLevel.LOW})


def test_lists_file_round_trip(tmp_path, fixture_list):
    lists = _lists(fixture_list)
    path = save_lists(tmp_path / "lists.json", lists)
    loaded = load_lists(path)
    assert loaded == lists and loaded.schema_id == LISTS_SCHEMA
    assert loaded.generated_at == "2026-03-01T12:00:00Z"
    assert loaded.sanctions_root == fixture_list.root_hex and loaded.sanctions_count == fixture_list.count
    assert loaded.jurisdiction_root == jurisdiction_root({"KP": RiskLevel.HIGH, "DE": RiskLevel.LOW})
    again = loaded.sanctions_list()
    assert again.root == fixture_list.root
    assert again.near_matches("Elvis Angus Logan Morez")[0].refs == ("ofac:10278",)


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        pytest.param(lambda d: d.update(sanctions_root="0x" + "0" * 64), IntegrityError, id="root_mismatch"),
        pytest.param(lambda d: d.update(keys=list(reversed(d["keys"]))), IntegrityError, id="keys_unsorted"),
        pytest.param(lambda d: d.update(sanctions_count=1), IntegrityError, id="count_mismatch"),
        pytest.param(lambda d: d["names"].pop(), IntegrityError, id="names_do_not_give_keys"),
        pytest.param(
            lambda d: d["high_risk"].update(DE="HIGH"), IntegrityError, id="jurisdiction_root_mismatch"
        ),
        pytest.param(lambda d: d.pop("jurisdiction_root"), IntegrityError, id="high_risk_without_root"),
        pytest.param(lambda d: d.update(schema="cap-lists.v0"), InvalidInputError, id="wrong_schema"),
        pytest.param(lambda d: d.update(generated_at="yesterday"), InvalidInputError, id="bad_timestamp"),
        pytest.param(lambda d: d.pop("keys"), InvalidInputError, id="missing_field"),
    ],
)
def test_lists_file_refuses_inconsistency(tmp_path, fixture_list, mutate, error):
    path = save_lists(tmp_path / "lists.json", _lists(fixture_list))
    doc = json.loads(path.read_text())
    mutate(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(error) as info:
        load_lists(path)
    assert info.value.details["file"] == "lists.json"


def test_lists_file_not_json(tmp_path):
    path = tmp_path / "lists.json"
    path.write_text("{\n  oops")
    with pytest.raises(InvalidInputError) as info:
        load_lists(path)
    assert info.value.details["line"] == 2


def test_build_lists_needs_aware_now(fixture_list):
    with pytest.raises(InvalidInputError):
        build_lists(fixture_list, [], datetime(2026, 1, 1))


# ------------------------------------------------------------------------------------- vectors


def _vector_files() -> list[Path]:
    return sorted((VECTORS_DIR / "screening").glob("*.json"))


@pytest.mark.parametrize("path", _vector_files(), ids=lambda p: p.stem)
def test_vector(path):
    vec = json.loads(path.read_text(encoding="utf-8"))
    version = KeyVersion(vec.get("key_version", KeyVersion.V1.value))  # absent: the original v1 files
    if vec["kind"] == "normalisation":
        for case in vec["cases"]:
            assert normalise_name(case["input"], version) == case["normalised"]
            assert "0x" + screening_key(case["input"], version).hex() == case["key"]
    elif vec["kind"] == "tree":
        entries = [
            SanctionsEntry(source="v", entry_id=str(i), primary_name=n) for i, n in enumerate(vec["names"])
        ]
        sl = SanctionsList.from_entries(entries, ["v"], version)
        assert ["0x" + k.hex() for k in sl.keys] == vec["keys"] and sl.root_hex == vec["sanctions_root"]
    elif vec["kind"] == "list_roots":
        entries = [SanctionsEntry.model_validate(e) for e in vec["entries"]]
        assert flat_sanctions_root(entries) == vec["flat_sanctions_root"]
        assert (
            jurisdiction_root({k: RiskLevel(v) for k, v in vec["high_risk"].items()})
            == vec["jurisdiction_root"]
        )
    else:
        key, root = bytes.fromhex(vec["key"][2:]), bytes.fromhex(vec["root"][2:])
        if vec["kind"] == "membership":
            result = verify_membership(key, MembershipProof.model_validate(vec["proof"]), root)
        else:
            result = verify_non_membership(key, NonMembershipProof.model_validate(vec["proof"]), root)
        assert result is vec["expected"], vec["description"]


def test_vectors_cover_the_named_negatives():
    names = {p.stem for p in _vector_files()}
    assert {
        "nonmembership_valid",
        "nonmembership_gap_not_adjacent",
        "nonmembership_key_present",
        "nonmembership_path_tampered",
        "nonmembership_boundary_not_last",
        "nonmembership_empty_list",
        "normalisation_v2",
        "sanctions_tree_v2",
    } <= names
