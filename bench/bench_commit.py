"""1 M supplier rows → root (SPEC §7 target ≤ 5 s). Prints figures; asserts nothing.

Run: .venv/bin/python bench/bench_commit.py [--rows N]; ``run(rows)`` returns the figures for
``python -m bench``.
"""

from __future__ import annotations

import argparse
import random
import string
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import Figure, at_most, info
from core.commitments import RootScheme, commit, read_suppliers

COUNTRIES = ["DE", "FR", "PL", "CN", "US", "BD", "VN", "IN", "TR", "SE"]


def make_csv(path: Path, rows: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        fh.write("name,jurisdiction,tier\n")
        for i in range(rows):
            name = "".join(rng.choices(string.ascii_letters, k=12))
            fh.write(f"{name} Supplier {i} GmbH,{rng.choice(COUNTRIES)},{rng.randint(1, 3)}\n")


def measure(rows: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "suppliers.csv"
        make_csv(path, rows)
        t0 = time.perf_counter()
        suppliers = read_suppliers(path)
        t1 = time.perf_counter()
        merkle = commit(suppliers, [], RootScheme.MERKLE, "t")
        t2 = time.perf_counter()
        commit(suppliers, [], RootScheme.FLAT, "t")
        t3 = time.perf_counter()
    assert merkle.supplier_count == rows
    return {"parse_s": t1 - t0, "merkle_root_s": t2 - t1, "total_merkle_s": t2 - t0, "flat_root_s": t3 - t2}


def run(rows: int = 1_000_000) -> list[Figure]:
    """``commit_1m_rows_s``: parse + validate + Merkle root (target ≤ 5 s); the flat root beside it."""
    m = measure(rows)
    note = f"{rows:,} rows" + ("" if rows == 1_000_000 else " (not 1 M)")
    return [
        at_most("commit_1m_rows_s", m["total_merkle_s"], "s", 5, note),
        info("commit_flat_root_s", m["flat_root_s"], "s", note + ", cap-flat-v1 root of the parsed rows"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    figures = measure(args.rows)
    print(f"commitments over {args.rows:,} supplier rows")
    for key, value in figures.items():
        print(f"  {key:16} {value:8.2f} s")
    print(f"  target: parse + merkle root ≤ 5 s → {'ok' if figures['total_merkle_s'] <= 5 else 'MISSED'}")


if __name__ == "__main__":
    main()
