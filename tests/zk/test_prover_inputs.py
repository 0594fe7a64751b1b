"""The prover's inputs: the secret salt-seed file, circuit shapes, salts that differ per row and seed."""

from __future__ import annotations

import pytest

from core.errors import InvalidInputError, NotFoundError
from core.zk.prover import read_salt_seed
from core.zk.witness import Circuit, derive_salt


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("ab" * 31, id="too_short"),
        pytest.param("AB" * 32, id="uppercase"),
        pytest.param("zz" * 32, id="not_hex"),
    ],
)
def test_bad_salt_seed_files_are_refused_naming_the_file(tmp_path, text):
    path = tmp_path / "seed.hex"
    path.write_text(text)
    with pytest.raises(InvalidInputError) as err:
        read_salt_seed(path)
    assert err.value.details["file"] == str(path)


def test_missing_salt_seed_file(tmp_path):
    with pytest.raises(NotFoundError):
        read_salt_seed(tmp_path / "absent.hex")


def test_salts_are_248_bit_and_depend_on_row_and_seed(tmp_path):
    path = tmp_path / "seed.hex"
    path.write_text("07" * 32 + "\n")
    seed = read_salt_seed(path)
    salts = {derive_salt(seed, i) for i in range(50)}
    assert len(salts) == 50 and all(0 <= s < 1 << 248 for s in salts)
    assert derive_salt(seed, 0) != derive_salt(bytes(32), 0)


@pytest.mark.parametrize(("batch_size", "depth"), [(3, 4), (0, 4), (4, 0), (4, 33)])
def test_unsupported_circuit_shapes_are_refused(batch_size, depth):
    with pytest.raises(InvalidInputError):
        Circuit(batch_size, depth)


def test_screened_leaves_use_the_lists_key_version():
    """A v2 list holds the v2 key of a homoglyph name; the leaf must be built under the same version."""
    from core.commitments import Supplier
    from core.name_keys import KeyVersion, screening_key
    from core.sanctions import SanctionsEntry
    from core.screening import SanctionsList
    from core.zk.gaptree import key248
    from core.zk.prover import screened_leaves

    listed = SanctionsList.from_entries(
        [SanctionsEntry(source="t", entry_id="1", primary_name="Petrov Holding")], ["t"], KeyVersion.V2
    )
    spoof = [Supplier("\u0420etrov Holding", "DE", 1)]  # Cyrillic capital Er
    (v2,) = screened_leaves(spoof, b"\x01" * 32, KeyVersion.V2)
    (v1,) = screened_leaves(spoof, b"\x01" * 32)
    assert v2.key == key248(listed.keys[0]) != v1.key
    assert v1.key == key248(screening_key(spoof[0].name))


def test_risk_words_pack_the_sorted_codes_and_unpack_to_the_same_set():
    from core.zk.witness import RISK_PADDING, jurisdiction_code, risk_alpha2, risk_codes, risk_words

    circuit = Circuit(2, 3)
    words = risk_words(["RU", "IR", "KP", "RU"], circuit)
    assert len(words) == circuit.risk_words == 4 and all(0 <= w < 1 << 240 for w in words)
    assert risk_alpha2(words) == ("IR", "KP", "RU")
    assert words[0] & 0xFFFF == jurisdiction_code("IR") == ord("I") << 8 | ord("R")
    assert risk_codes(risk_words([], circuit)) == set() and words[3] >> 224 == RISK_PADDING
    assert risk_words(["RU", "IR"], circuit) != risk_words(["RU"], circuit)


def test_more_high_risk_jurisdictions_than_the_circuit_holds_are_refused_before_proving():
    from core.zk.witness import risk_words

    codes = [a + b for a in "ABC" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"][:61]
    circuit = Circuit(2, 3)
    assert len(risk_words(codes[:60], circuit)) == 4
    with pytest.raises(InvalidInputError) as err:
        risk_words(codes, circuit)
    assert "61 high-risk jurisdictions" in err.value.message and err.value.details["field"] == "high_risk"


@pytest.mark.parametrize("code", ["de", "D", "DEU", "D1", "ÄB"])
def test_jurisdiction_codes_must_be_two_ascii_capitals(code):
    from core.zk.witness import jurisdiction_code

    with pytest.raises(InvalidInputError):
        jurisdiction_code(code)


@pytest.mark.parametrize("field", ["tier", "jurisdiction"])
def test_leaf_attributes_must_fit_16_bits(field):
    from core.zk.witness import ScreenedLeaf

    with pytest.raises(InvalidInputError) as err:
        ScreenedLeaf(1, 2, 3, **{field: 1 << 16})
    assert err.value.details["field"] == field


def test_only_high_jurisdictions_are_counted():
    from types import SimpleNamespace

    from core.sanctions import RiskLevel
    from core.zk.prover import high_risk_jurisdictions

    levels = {"RU": RiskLevel.HIGH, "CN": RiskLevel.MEDIUM, "IR": RiskLevel.HIGH, "DE": RiskLevel.LOW}
    assert high_risk_jurisdictions(SimpleNamespace(high_risk=levels)) == ("IR", "RU")
    assert high_risk_jurisdictions(None) == ()
