"""Flow ``zk-prove``: prove the v3 screening evidence for committed suppliers, one task per batch, in
parallel.

Orders the tasks of ``tasks/zk.py``; the statement and the checks live in ``core/zk``. Unchanged batches (same
suppliers, salts, list root and setup) come from the on-disk proof cache and are never re-proved. Progress is
a progress artifact updated as batches finish, and a table artifact ``zk-prove`` summarises the run. More
Prefect workers prove more batches at once: each batch is independent (docs/performance.md, "v3 proving").
Deployment ``zk-prove`` in ``prefect.yaml``.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from core.zk.toolchain import cache_dir
from core.zk.witness import Circuit
from tasks import zk as t


@flow(name="zk-prove", retries=0, task_runner=ThreadPoolTaskRunner(max_workers=2))
def zk_prove(
    suppliers: str,
    lists: str,
    salt_seed: str,
    out: str,
    batch_size: int = 2,
    depth: int = 3,
    setup_dir: str | None = None,
    proof_cache: str | None = None,
) -> dict[str, Any]:
    """Prove ``suppliers`` (CSV) unlisted in ``lists`` (cap-lists.v1) and write the evidence to ``out``.

    ``salt_seed`` names the prover's secret salt-seed file (never its content). Without ``setup_dir`` the
    development setup is used: NOT FOR PRODUCTION.
    """
    logger = get_run_logger()
    cache = proof_cache or str(cache_dir() / "proofs")
    job = t.load_job(suppliers, lists, salt_seed, setup_dir, Circuit(batch_size, depth), cache)
    total = len(job.batches)
    progress = create_progress_artifact(progress=0.0, description=f"zk-prove: {total} batches")
    futures = {t.prove_batch.submit(job, i): i for i in range(total)}
    proofs: list[Any] = [None] * total
    from_cache = 0
    for done, future in enumerate(as_completed(list(futures)), start=1):
        proof, hit = future.result()
        proofs[futures[future]] = proof
        from_cache += hit
        update_progress_artifact(progress, progress=100.0 * done / total)
        logger.info("batch %d/%d %s", futures[future] + 1, total, "from cache" if hit else "proved")
    evidence = t.assemble(job, proofs, out)
    result = t.summary(evidence, from_cache, out)
    create_table_artifact(key="zk-prove", table=[result], description="v3 screening proof run")
    return result
