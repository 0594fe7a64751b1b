"""cap-proof.v3 benchmark: Groth16 verification (single and batched), proof size, Poseidon and gap tree, and
proving on the development circuit, with the 10,000-supplier figures extrapolated beside the issue's targets.

Run: ``.venv/bin/python bench/bench_zk.py [--quick]``. Prints figures only; nothing is asserted. Verification
cost does not depend on the circuit size (9 public inputs at every B), so the development proofs measure it
exactly; proving is measured on the development circuit (B = 2, depth 3) and extrapolated per constraint,
which overstates small-circuit overhead (see docs/performance.md, "v3 proving").
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import Figure, at_most, info
from core.canonical import canonical_bytes
from core.commitments import RootScheme
from core.modes import EnforcementMode
from core.proof import proof_file_bytes
from core.sanctions import ListFormat
from core.zk import prover
from core.zk.evidence import check_screening, screening_root
from core.zk.gaptree import UPPER_SENTINEL, GapTree
from core.zk.groth16 import batch_verify, verify
from core.zk.poseidon import poseidon
from tests.zk import golden, world

BATCH_64_CONSTRAINTS = 353_103  # B = 64, depth 17, compiled (make bench-zk-full measures it proved)
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
    items = [(b.proof, b.public_signals(gap, world.risk())) for b in ev.batches]
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
    check_screening(
        ev, golden.commitment(), golden.trusted(), [ev.gap_root], world.HIGH_RISK, allow_development=True
    )
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
    prover.prove_batch(setup, gaps, world.risk(), batch)
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


def _documents(root: Path, suppliers: int) -> tuple[Any, bytes, bytes, float]:
    """A v3 and a v2 proof of ``suppliers`` generated suppliers (demo lists, policy and UBOs), built through
    the service like `cap proof build`; a fixed salt seed so a rerun takes the batch proofs from the cache.
    Returns settings, the two proof files and the v3 build's CPU seconds."""
    from core import service
    from core.prover import ProofScheme
    from core.settings import Settings
    from core.zk.proof_v3 import SALT_SEED_FILE
    from deployments.cli import demo

    now = datetime.now(UTC)
    cfg = Settings(data_dir=root / "var", build_dir=root / "build", zk_allow_dev=True)
    rows = "".join(f"Supplier {i:05d} Trading GmbH,DE,{1 + i % 3}\n" for i in range(suppliers))
    files = {n: root / f"{n}.csv" for n in ("suppliers", "ubos", "sanctions", "high_risk")}
    files["suppliers"].write_text("name,jurisdiction,tier\n" + rows)
    files["ubos"].write_text(demo.UBOS)
    files["sanctions"].write_text(demo.SANCTIONS)
    files["high_risk"].write_text(demo.HIGH_RISK)
    (root / "p.yml").write_text(
        demo.POLICY.replace("supplier_count_max: 10", f"supplier_count_max: {suppliers}")
    )
    service.keygen(cfg, now=now)
    (cfg.layout.keys_dir / SALT_SEED_FILE).write_text("cd" * 32)
    lists = service.build_lists_file([(files["sanctions"], ListFormat.CSV)], files["high_risk"], now)
    service.install_lists(cfg, lists, now)
    loaded = service.load_policy(root / "p.yml")
    commitments = service.commit_files(files["suppliers"], files["ubos"], RootScheme.MERKLE, now)
    manifest = service.make_manifest(cfg, commitments, loaded, lists, now)
    out = []
    c0 = _cpu()
    for scheme in (ProofScheme.V3, ProofScheme.V2):
        built = service.prove(
            cfg, manifest=manifest, loaded=loaded, suppliers=files["suppliers"], ubos=files["ubos"],
            lists=lists, mode=EnforcementMode.RELAXED, enforce=False, now=now, scheme=scheme,
        )  # fmt: skip
        out.append(proof_file_bytes(built.proof))
        if scheme is ProofScheme.V3:
            build_cpu = _cpu() - c0
    return cfg, out[0], out[1], build_cpu


def _document_figures(suppliers: int, repeats: int) -> list[Figure]:
    """In-process verification of whole proof documents (all checks, keyring and anchors loaded once, as
    the API holds them), v3 beside v2 for the same records."""
    from core import service
    from core.anchors import install_pin, trust_anchors
    from core.verify import verify_proof_bytes
    from core.zk.service import dev_pin
    from core.zk.witness import Circuit

    with tempfile.TemporaryDirectory(prefix="bench-v3-") as tmp:
        cfg, v3, v2, build_cpu = _documents(Path(tmp), suppliers)
        install_pin(cfg, dev_pin(Circuit(2, 3)))
        keyring, trust = service.load_local_keyring(cfg), trust_anchors(cfg)
        figures = [
            info("v3_build_cpu_s", build_cpu, "s CPU", f"{suppliers} suppliers + 2 UBOs, B=2 dev setup")
        ]
        for name, data in (("v3", v3), ("v2", v2)):
            report = verify_proof_bytes(
                data, keyring=keyring, mode=EnforcementMode.STRICT, now=datetime.now(UTC), trust=trust
            )
            t0 = time.process_time()
            for _ in range(repeats):
                verify_proof_bytes(
                    data, keyring=keyring, mode=EnforcementMode.STRICT, now=datetime.now(UTC), trust=trust
                )
            ms = (time.process_time() - t0) / repeats * 1000
            batches = -(-suppliers // 2) + 1
            note = f"{suppliers} suppliers, whole document, result {report.result.value}"
            figures.append(
                info(
                    f"{name}_verify_{suppliers}_ms",
                    ms,
                    "ms CPU",
                    note + (f", {batches} proofs" if name == "v3" else ""),
                )
            )
            figures.append(info(f"{name}_proof_{suppliers}_kb", len(data) / 1024, "KB", "proof.json"))
    return figures


def run(quick: bool = False) -> list[Figure]:
    return [
        *_verify_figures(20 if quick else 200),
        *_tree_figures(500 if quick else 2000),
        *_prove_figures(),
        *_document_figures(10 if quick else 100, 5 if quick else 20),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    for figure in run(parser.parse_args().quick):
        print(json.dumps(figure.as_json()))
