"""screening-key.v2: homoglyphs and non-Latin scripts on the real OFAC and UN extracts, v1 compatibility."""

from __future__ import annotations

import json
import string

import pytest
from disarm import normalize_confusables
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.errors import IntegrityError, InvalidInputError
from core.name_keys import KeyVersion, normalise_name, screening_key, to_ascii
from core.sanctions import read_ofac, read_un_xml
from core.screening import LISTS_SCHEMA, SanctionsList, build_lists, load_lists, save_lists
from tests.paths import FIXTURES
from tests.world import NOW

V1, V2 = KeyVersion.V1, KeyVersion.V2
GREEK_IOTA = "\u0399"
LISTED_IRAN = "IRAN AIRCRAFT MANUFACTURING INDUSTRIAL COMPANY"  # ofac sdn.csv, ent_num 11195


def _entries():
    return read_ofac(FIXTURES / "ofac" / "sdn.csv") + read_un_xml(FIXTURES / "un_consolidated_extract.xml")


@pytest.fixture(scope="module")
def lists_v1() -> SanctionsList:
    return SanctionsList.from_entries(_entries(), ["ofac", "un"], V1)


@pytest.fixture(scope="module")
def lists_v2() -> SanctionsList:
    return SanctionsList.from_entries(_entries(), ["ofac", "un"], V2)


def _refs(report):
    return {r for h in report.hits for r in h.refs} | {r for m in report.possible_matches for r in m.refs}


# ------------------------------------------------------------------------ caught on the real lists


def test_the_listed_name_is_in_the_ofac_extract(lists_v2):
    assert LISTED_IRAN in {n for e in _entries() for n in e.names}
    assert lists_v2.contains(lists_v2.key_of(LISTED_IRAN))


def test_one_greek_iota_evades_v1_and_is_an_exact_hit_under_v2(lists_v1, lists_v2):
    spoof = GREEK_IOTA + LISTED_IRAN[1:]
    assert spoof != LISTED_IRAN and spoof[0] != "I"
    before = lists_v1.screen([spoof])
    assert not before.hits and not before.possible_matches  # the attack, as filed in issue 15
    after = lists_v2.screen([spoof])
    assert [h.refs for h in after.hits] == [("ofac:11195",)]


@pytest.mark.parametrize(
    "spoof",
    [
        pytest.param("IRAN AIRCR\u0410FT MANUFACTURING INDUSTRIAL COMPANY", id="cyrillic_capital_a"),
        pytest.param("IRAN AIRCRAFT MANUFA\u0421TURING INDUSTRIAL COMPANY", id="cyrillic_capital_es"),
        pytest.param("IRAN AIRCRAFT MANUFACTURING INDUS\u03a4RIAL COMPANY", id="greek_tau"),
        pytest.param("IRAN AIRCRAFT MANUFACTURING INDUSTRIAL C\u041eMPANY", id="in_a_legal_form"),
        pytest.param("ＩＲＡＮ AIRCRAFT MANUFACTURING INDUSTRIAL COMPANY", id="fullwidth"),
        pytest.param("IR\u200bAN AIRCRAFT MANUFACTURING INDUSTRIAL COMPANY", id="zero_width_space"),
        pytest.param("I\u202eRAN AIRCRAFT MANUFACTURING INDUSTRIAL COMPANY", id="bidi_override"),
    ],
)
def test_other_homoglyph_spoofs_are_exact_hits_under_v2(lists_v2, spoof):
    assert [h.refs for h in lists_v2.screen([spoof]).hits] == [("ofac:11195",)]


@pytest.mark.parametrize(
    ("written", "ref"),
    [
        pytest.param("Хорошев Дмитрий Юрьевич", "ofac:48603", id="russian_cyrillic"),
        pytest.param("ХОРОШЕВ, Дмитрий Юрьевич", "ofac:48603", id="cyrillic_surname_first"),
        pytest.param(
            "Автономная некоммерческая организация по развитию цифровых проектов в сфере общественных "
            "связей и коммуникаций Диалог Регионы",
            "ofac:50544",
            id="near_match_on_the_folded_form",
        ),
    ],
)
def test_cyrillic_spelling_of_a_listed_name_is_caught_under_v2_only(lists_v1, lists_v2, written, ref):
    assert ref not in _refs(lists_v1.screen([written]))
    assert ref in _refs(lists_v2.screen([written]))


def test_near_matching_sees_the_folded_form_of_a_spoof_with_a_typo(lists_v1, lists_v2):
    spoof_typo = GREEK_IOTA + "RAN AIRCRAFT MANUFACTURNG INDUSTRIAL COMPANY"  # homoglyph and a typo
    assert "ofac:11195" not in _refs(lists_v1.screen([spoof_typo]))
    report = lists_v2.screen([spoof_typo])
    assert not report.hits
    assert "ofac:11195" in {r for m in report.possible_matches for r in m.refs}


def test_cyrillic_transliteration_meets_the_ofac_spelling_exactly(lists_v2):
    assert normalise_name("Хорошев Дмитрий Юрьевич", V2) == "dmitriy khoroshev yurevich"
    assert [h.refs for h in lists_v2.screen(["Хорошев Дмитрий Юрьевич"]).hits] == [("ofac:48603",)]


@pytest.mark.parametrize(
    ("written", "ref"),
    [
        pytest.param("راحت لمتد", "un:TAe.013", id="un_entity_rahat"),
        pytest.param("محمد قاسم میر ولی خدايرحيم", "un:TAi.165", id="un_individual"),
        pytest.param("ﺭﺍﺣﺖ ﻟﻤﺘﺪ", "un:TAe.013", id="arabic_presentation_forms"),
    ],
)
def test_arabic_script_name_from_the_un_list_is_an_exact_hit(lists_v2, written, ref):
    assert [h.refs for h in lists_v2.screen([written]).hits] == [(ref,)]


def test_un_original_script_names_are_read_as_aliases():
    un = {e.entry_id: e for e in read_un_xml(FIXTURES / "un_consolidated_extract.xml")}
    assert "راحت لمتد" in un["TAe.013"].aliases


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Иван Петров Строй", id="cyrillic_unrelated"),
        pytest.param("Αθηναϊκή Εμπορική Εταιρεία", id="greek_unrelated"),
        pytest.param("شركة النور للتجارة", id="arabic_unrelated"),
        pytest.param("Ιταλική Αεροπορία", id="greek_unrelated_with_iota"),
        pytest.param("Nordic Materials AB", id="latin_unrelated"),
        pytest.param("Iran Air Cargo Services", id="shares_a_word_only"),
        pytest.param("東京タワー株式会社", id="japanese"),
    ],
)
def test_unrelated_names_are_not_caught(lists_v2, name):
    report = lists_v2.screen([name])
    assert not report.hits and not report.possible_matches


def test_no_false_positive_explosion_on_a_batch_of_clean_names(lists_v1, lists_v2):
    clean = [
        f"{a} {b} {c}"
        for a in ("Nord", "Сибирь", "Ελλάς", "النور")
        for b in ("Trade", "Холдинг", "Εμπόριο")
        for c in ("GmbH", "ООО", "AE")
    ]
    assert not lists_v2.screen(clean).hits
    assert len(lists_v2.screen(clean).possible_matches) <= len(lists_v1.screen(clean).possible_matches) + 1


# ------------------------------------------------------------------------------ the v2 rule itself


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        pytest.param("Müller GmbH", "muller", id="accent"),
        pytest.param("Ørsted A/S", "orsted", id="letters_without_decomposition_transliterated"),
        pytest.param("Straße", "strasse", id="sharp_s"),
        pytest.param("Paek Ch’ang-Ho", "chang ho paek", id="curly_apostrophe"),
        pytest.param("Αθήνα", "athina", id="greek_word_transliterated"),
        pytest.param("НОРЕ", "nore", id="whole_cyrillic_word_is_read_as_cyrillic"),
        pytest.param("НОРΕ", "hope", id="cyrillic_greek_mix_is_a_spoof"),
        pytest.param("Пetrov", "petrov", id="mixed_word_without_latin_prototype"),
        pytest.param("北京", "beijing", id="han"),
        pytest.param("ACME\u00ad Trading", "acme trading", id="soft_hyphen_deleted"),
        pytest.param("😀 Holding", "holding", id="emoji_is_a_separator"),
        pytest.param("مُحَمَّد", "mhmd", id="arabic_vowel_marks_dropped_like_v1_drops_marks"),
        pytest.param("\u0420\u200bAYPAL", "paypal", id="zero_width_cannot_split_a_mixed_word"),
    ],
)
def test_v2_normalisation(raw, normalised):
    assert normalise_name(raw, V2) == normalised


@settings(deadline=None)  # anyascii loads a data block on first use of each script
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
def test_v2_equals_v1_on_ascii(text):
    assert normalise_name(text, V2) == normalise_name(text, V1)


@settings(deadline=None)  # anyascii loads a data block on first use of each script
@given(st.text(max_size=40))
def test_v2_is_ascii_and_idempotent(text):
    once = normalise_name(text, V2)
    assert once.isascii()
    assert normalise_name(once, V2) == once


def _confusables() -> dict[str, list[str]]:
    """ASCII letter → the non-Latin characters UTS #39 folds to it (from disarm's table, not ours)."""
    table: dict[str, list[str]] = {}
    blocks = [(0x0370, 0x0530), (0x0530, 0x0590), (0x13A0, 0x1400)]  # Greek, Cyrillic, Armenian, Cherokee
    for low, high in blocks:
        for cp in range(low, high):
            ch = chr(cp)
            if not ch.isalpha():
                continue
            folded = normalize_confusables(ch, target_script="latin")
            if len(folded) == 1 and folded in string.ascii_letters:
                table.setdefault(folded, []).append(ch)
    return table


CONFUSABLES = _confusables()


def test_the_confusable_table_covers_the_attack_letters():
    assert GREEK_IOTA in CONFUSABLES["I"] and "\u0430" in CONFUSABLES["a"] and "\u0420" in CONFUSABLES["P"]
    assert sum(map(len, CONFUSABLES.values())) > 100


words = st.lists(st.text(alphabet=string.ascii_letters, min_size=2, max_size=12), min_size=1, max_size=4)


@settings(deadline=None)  # anyascii loads a data block on first use of each script
@given(words, st.data())
def test_key_is_invariant_under_folded_confusable_substitutions(parts, data):
    spoofed = []
    for word in parts:
        keep = data.draw(st.integers(0, len(word) - 1))  # one Latin letter stays: the word mixes scripts
        letters = [
            data.draw(st.sampled_from(CONFUSABLES[c]))
            if i != keep and c in CONFUSABLES and data.draw(st.booleans())
            else c
            for i, c in enumerate(word)
        ]
        spoofed.append("".join(letters))
    original, spoof = " ".join(parts), " ".join(spoofed)
    assume(normalise_name(original, V2))
    assert screening_key(spoof, V2) == screening_key(original, V2)


def test_to_ascii_folds_only_mixed_script_words():
    assert to_ascii(GREEK_IOTA + "RAN") == "IRAN"
    assert to_ascii("Хорошев") == "Khoroshev"  # not "Xopoweb": a Cyrillic word is Cyrillic


# -------------------------------------------------------------------------- versions do not mix


def test_lists_file_records_v2_and_v1_files_keep_their_bytes(tmp_path, lists_v1, lists_v2):
    v1 = build_lists(lists_v1, [], NOW)
    assert v1.key_version is None and b"key_version" not in save_lists(tmp_path / "v1.json", v1).read_bytes()
    v2 = build_lists(lists_v2, [], NOW)
    loaded = load_lists(save_lists(tmp_path / "v2.json", v2))
    assert loaded.version is V2 and loaded.sanctions_list().key_version is V2
    assert loaded.sanctions_root == lists_v2.root_hex != lists_v1.root_hex


def test_v1_names_under_a_v2_label_are_refused(tmp_path, lists_v1):
    doc = json.loads(save_lists(tmp_path / "v1.json", build_lists(lists_v1, [], NOW)).read_bytes())
    doc["key_version"] = V2.value
    (tmp_path / "mixed.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(IntegrityError, match=r"not normalised under screening-key\.v2") as exc:
        load_lists(tmp_path / "mixed.json")
    assert exc.value.details["field"].startswith("names[")


def test_unknown_key_version_in_a_lists_file_is_bad_input(tmp_path, lists_v2):
    doc = json.loads(save_lists(tmp_path / "v2.json", build_lists(lists_v2, [], NOW)).read_bytes())
    doc["key_version"] = "screening-key.v9"
    (tmp_path / "v9.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"screening-key\.v1' or 'screening-key\.v2") as exc:
        load_lists(tmp_path / "v9.json")
    assert "v9.json" in exc.value.diagnostics()
    assert doc["schema"] == LISTS_SCHEMA


def test_a_list_screens_under_its_own_version(lists_v1, lists_v2):
    spoof = GREEK_IOTA + LISTED_IRAN[1:]
    assert lists_v1.key_of(spoof) == screening_key(spoof, V1) != lists_v2.key_of(spoof)
    assert lists_v2.normalise(spoof) == normalise_name(LISTED_IRAN, V1)
