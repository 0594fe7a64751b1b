"""1 M supplier rows → root (SPEC §7 target ≤ 5 s). Prints figures; asserts nothing.

Run: .venv/bin/python bench/bench_commit.py [--rows N]
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

from core.commit_parallel import supplier_leaves
from core.commitments import RootScheme, commit, commit_leaves, read_suppliers

COUNTRIES = ["DE", "FR", "PL", "CN", "US", "BD", "VN", "IN", "TR", "SE"]


def make_csv(path: Path, rows: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        fh.write("name,jurisdiction,tier\n")
        for i in range(rows):
            name = "".join(rng.choices(string.ascii_letters, k=12))
            fh.write(f"{name} Supplier {i} GmbH,{rng.choice(COUNTRIES)},{rng.randint(1, 3)}\n")


def run(rows: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "suppliers.csv"
        make_csv(path, rows)
        t0 = time.perf_counter()
        leaves = supplier_leaves(path)
        merkle = commit_leaves(leaves, [], RootScheme.MERKLE, "t")
        t1 = time.perf_counter()
        suppliers = read_suppliers(path)
        t2 = time.perf_counter()
        sequential = commit(suppliers, [], RootScheme.MERKLE, "t")
        t3 = time.perf_counter()
    assert merkle.supplier_root == sequential.supplier_root and merkle.supplier_count == rows
    return {
        "total_merkle_s": t1 - t0,
        "sequential_parse_s": t2 - t1,
        "sequential_root_s": t3 - t2,
        "sequential_total_s": t3 - t1,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    figures = run(args.rows)
    print(f"commitments over {args.rows:,} supplier rows")
    for key, value in figures.items():
        print(f"  {key:16} {value:8.2f} s")
    print(f"  target: parse + merkle root ≤ 5 s → {'ok' if figures['total_merkle_s'] <= 5 else 'MISSED'}")


if __name__ == "__main__":
    main()
