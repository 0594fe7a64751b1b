"""cap-proof.v3 benchmark: Groth16 verification (single and batched), proof size, Poseidon and gap tree, and
proving on the development circuit, with the 10,000-supplier figures extrapolated beside the issue's targets.

Run: ``.venv/bin/python bench/bench_zk.py [--quick]``. Prints figures only; nothing is asserted. Verification
cost does not depend on the circuit size (3 public inputs at every B), so the development proofs measure it
exactly; proving is measured on the development circuit (B = 2, depth 3) and extrapolated per constraint,
which overstates small-circuit overhead (see docs/performance.md, "v3 proving").
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import Figure, at_most, info
from core.canonical import canonical_bytes
from core.zk import prover
from core.zk.evidence import check_screening, screening_root
from core.zk.gaptree import UPPER_SENTINEL, GapTree
from core.zk.groth16 import batch_verify, verify
from core.zk.poseidon import poseidon
from tests.zk import golden, world

BATCH_64_CONSTRAINTS = 64 * 5115 + 63 * 243  # per slot at depth 17 from the measured depth-3/4 circuits
SUPPLIERS = 10_000
STUDY_US_PER_CONSTRAINT = (
    100  # snarkjs Groth16 at B = 16 (85 k constraints), shared/reference/zk_screening.md
)


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _verify_figures(repeats: int) -> list[Figure]:
    ev, vk = golden.evidence(), golden.vk()
    gap = int(ev.gap_root, 16)
    items = [(b.proof, b.public_signals(gap)) for b in ev.batches]
    verify(vk, *items[0])  # warm: load mcl, prepare the key
    t0 = time.process_time()
    for _ in range(repeats):
        verify(vk, *items[0])
    single = (time.process_time() - t0) / repeats * 1000
    n = -(-SUPPLIERS // 64)
    many = (items * n)[:n]
    roots = [random.Random(i).randrange(1 << 250) for i in range(n)]
    t0 = time.process_time()
    for _ in range(max(1, repeats // 20)):
        ok = batch_verify(vk, many)
        screening_root(64, SUPPLIERS, roots)
    batched = (time.process_time() - t0) / max(1, repeats // 20) * 1000
    t0 = time.process_time()
    check_screening(ev, golden.commitment(), golden.trusted(), [ev.gap_root], allow_development=True)
    whole = (time.process_time() - t0) * 1000
    per_batch = len(canonical_bytes(ev.batches[0]))
    size_10k = (per_batch + 1) * n + 600
    return [
        info("zk_verify_one_proof_ms", single, "ms CPU", "mcl, one Groth16 proof"),
        at_most(
            "zk_verify_10k_ms", batched, "ms CPU", 100, f"{n} proofs (B=64) batched, ok={ok}; v2: 942 ms"
        ),
        info("zk_check_dev_evidence_ms", whole, "ms CPU", "all rules, 3-batch development evidence"),
        at_most("zk_proof_10k_kb", size_10k / 1024, "KB", 256, f"{per_batch} B per batch JSON; v2: 26.9 MB"),
    ]


def _tree_figures(keys: int) -> list[Figure]:
    t0 = time.process_time()
    for i in range(200):
        poseidon((i, i + 1))
    per_hash = (time.process_time() - t0) / 200 * 1e6
    rng = random.Random(18)
    listed = {rng.randrange(1, UPPER_SENTINEL) for _ in range(keys)}
    t0 = time.process_time()
    GapTree(listed, 17)
    built = time.process_time() - t0
    return [
        info("zk_poseidon2_us", per_hash, "us CPU", "pure Python, circomlib-compatible"),
        info("zk_gap_tree_s", built, "s CPU", f"{keys} keys, depth 17"),
        info("zk_gap_tree_75k_s", built * 75_000 / keys, "s CPU", "extrapolated (linear) to 75,000 keys"),
    ]


def _prove_figures() -> list[Figure]:
    setup, gaps = world.setup(), world.gaps()
    batch = list(world.leaves()[:2])
    t0, c0 = time.perf_counter(), _cpu()
    prover.prove_batch(setup, gaps, batch)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    constraints = int(setup.compiled.info["constraints"])
    per_constraint = cpu / constraints
    batches = -(-SUPPLIERS // 64)
    full_cpu = STUDY_US_PER_CONSTRAINT * 1e-6 * BATCH_64_CONSTRAINTS * batches
    return [
        info(
            "zk_prove_dev_batch_s",
            cpu,
            "s CPU",
            f"B=2, depth 3, {constraints} constraints, {wall:.1f} s wall",
        ),
        info(
            "zk_prove_cpu_per_constraint_us",
            per_constraint * 1e6,
            "us CPU",
            "dev circuit: overhead-dominated",
        ),
        info(
            "zk_prove_10k_cpu_min_est", full_cpu / 60, "min CPU", f"{batches} x B=64 at the study's 100 us/c."
        ),
        info(
            "zk_prove_10k_wall_min_est",
            full_cpu / 60 / 1.8,
            "min",
            "2 cores, two batch proofs at once; target 60",
        ),
    ]


def run(quick: bool = False) -> list[Figure]:
    return [*_verify_figures(20 if quick else 200), *_tree_figures(500 if quick else 2000), *_prove_figures()]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    for figure in run(parser.parse_args().quick):
        print(json.dumps(figure.as_json()))
