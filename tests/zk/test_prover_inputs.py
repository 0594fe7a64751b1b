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
