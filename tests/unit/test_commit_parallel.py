"""The multi-process leaf path gives the same leaves and the same error lines as the sequential one."""

import pytest

from core import commit_parallel
from core.commitments import parse_suppliers, supplier_leaf
from core.errors import InvalidInputError

ROWS = "".join(f"Supplier {i} GmbH,{'DE' if i % 3 else 'PL'},{1 + i % 3}\n" for i in range(2000))


@pytest.fixture(autouse=True)
def small_threshold(monkeypatch):
    monkeypatch.setattr(commit_parallel, "PARALLEL_MIN_BYTES", 1)


@pytest.mark.parametrize("workers", [2, 3])
def test_parallel_leaves_equal_sequential(tmp_path, workers):
    path = tmp_path / "s.csv"
    path.write_text("name,jurisdiction,tier\n" + ROWS)
    expected = [supplier_leaf(s) for s in parse_suppliers(path.read_text())]
    assert commit_parallel.supplier_leaves(path, workers=workers) == expected


@pytest.mark.parametrize("bad_row", [5, 1500, 2000], ids=["first_part", "second_part", "last_row"])
def test_error_lines_are_the_files_own(tmp_path, bad_row):
    lines = ROWS.splitlines(keepends=True)
    lines[bad_row - 1] = "Broken Co,XX,1\n"
    path = tmp_path / "s.csv"
    path.write_text("name,jurisdiction,tier\n" + "".join(lines))
    with pytest.raises(InvalidInputError) as err:
        commit_parallel.supplier_leaves(path, workers=2)
    assert err.value.details["line"] == bad_row + 1 and err.value.details["column"] == "jurisdiction"


def test_quoted_files_take_the_sequential_path(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text('name,jurisdiction,tier\n"A, B",DE,1\n' + ROWS)
    expected = [supplier_leaf(s) for s in parse_suppliers(path.read_text())]
    assert commit_parallel.supplier_leaves(path, workers=2) == expected
