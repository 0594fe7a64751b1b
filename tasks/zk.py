"""Prefect tasks of the ``zk-prove`` flow: one core call each.

The job (salts, screening keys) stays in worker memory: tasks receive it as a plain holder, never as a flow
parameter or a persisted result, and nothing is cached by Prefect (batch proofs are cached by
:mod:`core.zk.prover` on disk, keyed by their inputs, holding only public values).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task

from core.commitments import read_suppliers
from core.fsio import atomic_write
from core.screening import load_lists
from core.zk import prover
from core.zk.ceremony import Setup, dev_setup, open_setup, setup_circuit
from core.zk.evidence import BatchProof, ScreeningEvidence
from core.zk.gaptree import GapTree
from core.zk.toolchain import compile_circuit
from core.zk.witness import Circuit, ScreenedLeaf, batches, risk_words
from tasks.retry import LOCAL, TRANSIENT_IO


class ProveJob:
    """Everything the batch tasks share. A plain holder: Prefect must not walk or persist it."""

    __slots__ = ("cache", "gaps", "leaves", "risk", "setup")

    def __init__(
        self, setup: Setup, gaps: GapTree, risk: tuple[int, ...], leaves: list[ScreenedLeaf], cache: Path
    ) -> None:
        self.setup, self.gaps, self.risk, self.leaves, self.cache = setup, gaps, risk, leaves, cache

    @property
    def batches(self) -> list[list[ScreenedLeaf]]:
        return batches(self.leaves, self.setup.compiled.circuit.batch_size)


@task(name="load-prove-job", **LOCAL)
def load_job(
    suppliers: str, lists: str, salt_seed: str, setup_dir: str | None, circuit: Circuit, cache: str
) -> ProveJob:
    if setup_dir is None:
        setup = dev_setup(circuit)
    else:
        setup = open_setup(compile_circuit(setup_circuit(Path(setup_dir))), Path(setup_dir))
    listed = load_lists(lists)
    gaps = prover.gap_tree(listed, setup.compiled.circuit.depth)
    risk = risk_words(prover.high_risk_jurisdictions(listed), setup.compiled.circuit)
    seed = prover.read_salt_seed(Path(salt_seed))
    leaves = prover.screened_leaves(read_suppliers(suppliers), seed, listed.version)
    return ProveJob(setup, gaps, risk, leaves, Path(cache))


@task(name="prove-batch", **{**TRANSIENT_IO, "retries": 2})
def prove_batch(job: ProveJob, index: int) -> tuple[BatchProof, bool]:
    """Batch ``index``'s proof and whether it came from the cache."""
    batch = job.batches[index]
    hit = prover.cached_proof(job.setup, job.gaps, job.risk, batch, job.cache)
    if hit is not None:
        return hit, True
    return prover.prove_batch(job.setup, job.gaps, job.risk, batch, cache=job.cache), False


@task(name="assemble-evidence", **LOCAL)
def assemble(job: ProveJob, proofs: list[BatchProof], out: str) -> ScreeningEvidence:
    evidence = prover.assemble(job.setup, job.gaps, job.risk, job.leaves, proofs)
    atomic_write(Path(out), prover.dump(evidence))
    return evidence


def summary(evidence: ScreeningEvidence, from_cache: int, out: str) -> dict[str, Any]:
    return {
        "out": out,
        "suppliers": evidence.count,
        "batches": len(evidence.batches),
        "proved": len(evidence.batches) - from_cache,
        "from_cache": from_cache,
        "vk_hash": evidence.vk_hash,
        "gap_root": evidence.gap_root,
        "max_tier": evidence.max_tier,
        "high_risk_count": evidence.high_risk_count,
        "screening_root": evidence.screening_root,
    }
