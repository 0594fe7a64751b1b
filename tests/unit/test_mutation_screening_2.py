"""What a refused lists file, a refused screening name and a hit report say (core/screening.py).

Each case kills a mutant of core/screening.py (``make mutation MODULE=core/screening.py``): the error's class,
message and the file and field it names, or the report a user reads.
"""

import json
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.errors import IntegrityError, InvalidInputError, NotFoundError
from core.merkle import merkle_root
from core.name_keys import KeyVersion, key_of_normalised, normalise_name
from core.sanctions import RiskLevel
from core.screening import LISTS_SCHEMA, SanctionsList, build_lists, check_lists, load_lists, save_lists

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LIST = SanctionsList(
    {normalise_name(f"listed person {i}", KeyVersion.V1): [f"t:{i}"] for i in range(5)}, ["test"]
)


def _doc(tmp_path, mutate):
    path = save_lists(tmp_path / "lists.json", build_lists(LIST, [], NOW, {"KP": RiskLevel.HIGH}))
    doc = json.loads(path.read_text())
    mutate(doc)
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    ("mutate", "message", "field"),
    [
        pytest.param(
            lambda d: d.update(sanctions_root="0x" + "0" * 64),
            "sanctions_root does not match keys",
            "sanctions_root",
            id="root",
        ),
        pytest.param(
            lambda d: d.update(keys=list(reversed(d["keys"]))),
            "keys are not strictly sorted 0x hex digests",
            "keys",
            id="unsorted",
        ),
        pytest.param(
            lambda d: d["keys"].__setitem__(0, "0x" + "g" * 64),
            "keys are not strictly sorted 0x hex digests",
            "keys",
            id="not_hex",
        ),
        pytest.param(
            lambda d: d.update(sanctions_count=1),
            "sanctions_count does not match keys",
            "sanctions_count",
            id="count",
        ),
        pytest.param(lambda d: d["names"].pop(), "keys are not the keys of names", "names", id="names"),
        pytest.param(
            lambda d: d.pop("jurisdiction_root"),
            "high_risk and jurisdiction_root must come together",
            "jurisdiction_root",
            id="root_missing",
        ),
        pytest.param(
            lambda d: d["high_risk"].update(KP="LOW"),
            "jurisdiction_root does not match high_risk",
            "jurisdiction_root",
            id="root_mismatch",
        ),
    ],
)
def test_an_inconsistent_lists_file_is_refused_naming_file_and_field(tmp_path, mutate, message, field):
    with pytest.raises(IntegrityError) as caught:
        load_lists(_doc(tmp_path, mutate))
    error = caught.value
    assert (error.message, error.details["file"], error.details["field"]) == (message, "lists.json", field)


def test_a_count_mismatch_says_the_count_expected(tmp_path):
    with pytest.raises(IntegrityError) as caught:
        load_lists(_doc(tmp_path, lambda d: d.update(sanctions_count=1)))
    assert caught.value.details["expected"] == "5"


def test_a_lists_file_of_another_schema_names_the_schema_expected(tmp_path):
    with pytest.raises(InvalidInputError) as caught:
        load_lists(_doc(tmp_path, lambda d: d.update(schema="cap-lists.v0")))
    assert caught.value.details["expected"] == f"a {LISTS_SCHEMA} document"


def test_a_missing_lists_file_is_named(tmp_path):
    path = tmp_path / "nowhere.json"
    with pytest.raises(NotFoundError) as caught:
        load_lists(path)
    assert caught.value.details["file"] == str(path)


def test_a_v2_file_with_a_name_not_in_v2_normal_form_names_the_file_and_the_entry():
    names = ["anna schmidt", "ANNA SCHMIDT"]
    keys = sorted(key_of_normalised(n) for n in names)
    lists = build_lists(SanctionsList({"anna schmidt": ["t:1"]}, ["test"], KeyVersion.V2), [], NOW)
    listed = [{"name": n, "refs": ["t:1"]} for n in sorted(names)]
    doc = json.loads(lists.model_dump_json(by_alias=True))
    doc.update(
        keys=["0x" + k.hex() for k in keys],
        names=listed,
        sanctions_count=2,
        sanctions_root="0x" + merkle_root(keys).hex(),
    )
    broken = type(lists).model_validate(doc)
    with pytest.raises(IntegrityError) as caught:
        check_lists(broken, "v2.json")
    error = caught.value
    assert error.details["file"] == "v2.json" and error.details["field"] == "names[0]"
    assert "is not normalised under screening-key.v2" in error.message


def test_build_lists_needs_an_aware_time_and_names_it():
    with pytest.raises(InvalidInputError) as caught:
        build_lists(LIST, [], datetime(2026, 1, 1))
    assert caught.value.details["field"] == "now" and caught.value.details["expected"] == "an aware datetime"


@pytest.fixture
def tokyo(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_generated_at_is_utc_whatever_the_machine_time_zone(tokyo):
    berlin = NOW.astimezone(timezone(timedelta(hours=2)))
    assert build_lists(LIST, [], berlin).generated_at == "2026-03-01T12:00:00Z"


def test_a_key_beyond_the_last_listed_key_is_not_listed():
    with pytest.raises(InvalidInputError) as caught:
        LIST.prove_present(b"\xff" * 32)
    assert caught.value.code == "key_not_listed"


def test_a_name_without_letters_is_refused_naming_its_position():
    with pytest.raises(InvalidInputError) as caught:
        LIST.screen(["listed person 1", "--- ..."])
    error = caught.value
    assert error.message == "name '--- ...' has no letters or digits"
    assert error.details == {"field": "names[1]", "expected": "a name with at least one letter or digit"}


def test_a_hit_reports_the_key_as_0x_hex():
    name = LIST.names[0]
    (hit,) = LIST.screen([name]).hits
    assert hit.key == "0x" + key_of_normalised(name).hex() and hit.refs == LIST.refs[0]


def test_a_listed_name_without_letters_names_its_entry():
    from core.sanctions import SanctionsEntry

    entry = SanctionsEntry(source="ofac", entry_id="42", primary_name="Real Name", aliases=("+++",))
    with pytest.raises(InvalidInputError) as caught:
        SanctionsList.from_entries([entry], ["ofac"])
    error = caught.value
    assert error.details == {"field": "name", "entry": entry.ref, "expected": "a name"}


def test_a_threshold_out_of_range_is_refused_naming_it():
    with pytest.raises(InvalidInputError) as caught:
        LIST.screen(["anna"], threshold=1.5)
    assert caught.value.details == {"field": "threshold", "expected": "0.5 < threshold <= 1.0"}


def test_a_key_of_the_wrong_length_is_refused_naming_it():
    with pytest.raises(InvalidInputError) as caught:
        LIST.contains(b"short")
    assert caught.value.details == {"field": "key", "expected": "32 bytes"}


def test_a_near_match_scores_its_indel_similarity_in_basis_points():
    near = SanctionsList({"anna schmid": ["t:1"]}, ["test"]).near_matches("Anna Schmidt")
    assert [(m.candidate, m.score_bp) for m in near] == [("anna schmid", 10000 * 22 // 23)]


def test_a_partner_whose_matching_segment_sits_left_of_its_own_start_is_found():
    # Pass-Join's window for segment i starts at start - i: found by a random search against a narrower window
    names = ["aaaabaabaa", "aabaaabbb", "abaaa", "ababbaba", "abbbbb", "baabaabab", "babab", "bbaabbabab"]
    listed = SanctionsList({n: ["t"] for n in names}, ["test"])
    assert "baabaabab" in {m.candidate for m in listed.near_matches("aabaabbb", threshold=0.8)}
