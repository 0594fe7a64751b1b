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
