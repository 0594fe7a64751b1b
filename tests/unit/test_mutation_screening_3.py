"""Near-match search and the lists file, as the full mutation run of core/screening.py found them undefended.

The Pass-Join index (``_SegmentIndex``) must find every listed name within the threshold however the
query differs from it: an exhaustive check over every one- and two-character edit at every position of
names of every length up to 12 compares it with brute force. The rest pins what a user reads: the
refusals' words and the fields and keys they name (``make mutation MODULE=core/screening.py``).
"""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest
from rapidfuzz.distance import Indel

from core.errors import IntegrityError, InvalidInputError, NotFoundError
from core.name_keys import KeyVersion
from core.sanctions import SanctionsEntry
from core.screening import ListedName, SanctionsList, build_lists, check_lists, load_lists

BASE = "abcdefghijkl"
NAMES = [BASE[:n] for n in range(1, 13)]


def _list() -> SanctionsList:
    """A fresh list per test: its near-match index is built on first use and cached in the object, and a
    mutation run must see each test build its own."""
    return SanctionsList({name: [f"t:{name}"] for name in NAMES}, ["test"])


LIST = _list()  # for the tests that only read keys and proofs


def _edits(name: str) -> set[str]:
    """Every one-character deletion, insertion and substitution, and every two-character deletion."""
    out = set()
    for i in range(len(name) + 1):
        out.add(name[:i] + "z" + name[i:])
        if i < len(name):
            out.add(name[:i] + name[i + 1 :])
            out.add(name[:i] + "y" + name[i + 1 :])
    for i, j in itertools.combinations(range(len(name)), 2):
        out.add(name[:i] + name[i + 1 : j] + name[j + 1 :])
    return {q for q in out if q}


def _brute(query: str, bp: int) -> list[tuple[str, int]]:
    out = []
    for name in NAMES:
        total = len(query) + len(name)
        distance = Indel.distance(query, name)
        if 10000 * (total - distance) >= bp * total:
            out.append((name, (10000 * (total - distance)) // total))
    return sorted(out, key=lambda m: (-m[1], m[0]))


@pytest.mark.parametrize("threshold", [0.6, 0.75, 0.9])
def test_near_matches_equal_brute_force_for_every_small_edit_at_every_position(threshold):
    bp = round(threshold * 10000)
    queries = sorted(set().union(*(_edits(n) for n in NAMES)))
    lists = _list()
    for query in queries:
        found = [(m.candidate, m.score_bp) for m in lists.near_matches(query, threshold)]
        assert found == _brute(query, bp), query


def test_near_matches_come_best_first():
    found = _list().near_matches("abcdefgh", 0.6)
    assert [m.candidate for m in found[:3]] == ["abcdefgh", "abcdefghi", "abcdefg"]
    assert [m.score_bp for m in found] == sorted((m.score_bp for m in found), reverse=True)


def test_a_threshold_of_one_half_is_refused_in_words():
    with pytest.raises(InvalidInputError) as exc:
        LIST.near_matches("abc", 0.5)
    assert exc.value.message == "threshold 0.5 out of range"
    assert (exc.value.details["field"], exc.value.details["expected"]) == (
        "threshold",
        "0.5 < threshold <= 1.0",
    )


def test_proofs_for_the_wrong_side_name_the_key():
    listed, absent = LIST.key_of("abc"), LIST.key_of("nobody")
    with pytest.raises(InvalidInputError) as exc:
        LIST.prove_absent(listed)
    assert (exc.value.message, exc.value.code, exc.value.details["key"]) == (
        "key is listed",
        "key_is_listed",
        "0x" + listed.hex(),
    )
    with pytest.raises(InvalidInputError) as exc:
        LIST.prove_present(absent)
    assert (exc.value.message, exc.value.code, exc.value.details["key"]) == (
        "key is not listed",
        "key_not_listed",
        "0x" + absent.hex(),
    )


def test_a_key_of_the_wrong_size_is_refused_saying_its_size():
    with pytest.raises(InvalidInputError) as exc:
        LIST.contains(b"\x01" * 31)
    assert exc.value.message == "key has 31 bytes"


def test_a_key_above_every_listed_key_is_not_listed():
    lists = _list()
    top = b"\xff" * 32
    assert top not in lists.keys
    assert lists.contains(top) is False
    # a name whose key sorts after every listed key screens clear (no index past the end is read)
    name = next(f"n{i}" for i in range(10_000) if lists.key_of(f"n{i}") > lists.keys[-1])
    report = lists.screen([name])
    assert report.clear and not report.hits


def test_a_name_without_letters_is_refused_quoting_sixty_characters():
    long = "-" * 70
    with pytest.raises(InvalidInputError) as exc:
        SanctionsList.from_entries([SanctionsEntry(source="t", entry_id="1", primary_name=long)], ["t"])
    assert exc.value.message == f"name {long[:60]!r} of t:1 has no letters or digits"
    with pytest.raises(InvalidInputError) as exc:
        LIST.screen([long])
    assert exc.value.message == f"name {long[:60]!r} has no letters or digits"


def test_the_list_keeps_its_sources():
    assert _list().sources == ("test",)


def test_lists_need_an_aware_time_in_words():
    with pytest.raises(InvalidInputError) as exc:
        build_lists(LIST, [], datetime(2026, 12, 6))
    assert exc.value.message == "generated_at needs a timezone"


def _lists_file():
    from datetime import UTC

    return build_lists(LIST, [], datetime(2026, 12, 6, tzinfo=UTC))


def test_duplicate_keys_are_refused_naming_the_default_file():
    lists = _lists_file()
    doubled = lists.model_copy(update={"keys": [lists.keys[0], *lists.keys]})
    with pytest.raises(IntegrityError) as exc:
        check_lists(doubled)
    assert (exc.value.message, exc.value.details["file"]) == (
        "keys are not strictly sorted 0x hex digests",
        "lists",
    )


def test_a_v2_label_over_names_not_in_v2_form_quotes_sixty_characters_and_says_what_was_expected():
    lists = _lists_file()
    odd = "Ω" * 70
    names = [ListedName(name=odd, refs=("t:1",)), *lists.names[1:]]
    bad = lists.model_copy(update={"key_version": KeyVersion.V2, "names": names})
    from core.screening import _check_normal_form

    with pytest.raises(IntegrityError) as exc:
        _check_normal_form(bad, "lists.json")
    assert exc.value.message == f"name {odd[:60]!r} is not normalised under {KeyVersion.V2.value}"
    assert exc.value.details["expected"] == f"names normalised under key_version {KeyVersion.V2.value}"


def test_a_missing_lists_file_is_named_in_words(tmp_path):
    with pytest.raises(NotFoundError) as exc:
        load_lists(tmp_path / "lists.json")
    assert exc.value.message == f"lists file not found: {tmp_path / 'lists.json'}"


def test_an_unreadable_lists_file_says_what_it_is(tmp_path):
    path = tmp_path / "lists.json"
    path.write_text("[]")
    with pytest.raises(InvalidInputError) as exc:
        load_lists(path)
    assert exc.value.message.startswith("invalid lists file: ")
