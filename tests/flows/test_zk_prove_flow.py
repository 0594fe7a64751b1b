"""The ``zk-prove`` flow: real runs on the shared Prefect test server over the development circuit.

First run proves every batch (in parallel tasks) and the evidence verifies; an identical re-run proves nothing
(every batch from the input-keyed cache); adding one supplier re-proves only the batch it lands in.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from core import service
from core.commitments import Supplier
from core.name_keys import KeyVersion
from core.sanctions import ListFormat, load_source
from core.screening import SanctionsList, build_lists
from core.zk.evidence import ScreeningEvidence, check_screening
from core.zk.prover import commit, screened_leaves
from tests.zk import world


def _files(tmp_path, suppliers):
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["name", "jurisdiction", "tier"])
    writer.writerows(suppliers)
    (tmp_path / "suppliers.csv").write_text(text.getvalue())
    sanctions = tmp_path / "sanctions.csv"
    sanctions.write_text("name,birthdate,nationality\n" + "".join(f'"{n}",,\n' for n in world.LISTED))
    loaded = load_source(sanctions, ListFormat.CSV)
    # the zk golden world (tests/zk/world.py) is screening-key.v1; the flow keys suppliers under the lists'
    # version, so these lists are v1 too ("Ørsted" has a different v2 key)
    listed = SanctionsList.from_entries(loaded.entries, ["sanctions.csv"], KeyVersion.V1)
    lists = build_lists(listed, [loaded.source], datetime(2026, 12, 6, tzinfo=UTC))
    service.write_json(tmp_path / "lists.json", lists)
    (tmp_path / "seed.hex").write_text(world.SALT_SEED.hex())
    return {
        "suppliers": str(tmp_path / "suppliers.csv"),
        "lists": str(tmp_path / "lists.json"),
        "salt_seed": str(tmp_path / "seed.hex"),
        "proof_cache": str(tmp_path / "proofs"),
    }


@pytest.mark.slow
@pytest.mark.xdist_group("prefect")
@pytest.mark.timeout(900)
def test_zk_prove_proves_in_parallel_caches_unchanged_batches_and_reproves_only_changes(
    prefect_api, tmp_path
):
    from flows.zk_prove import zk_prove

    world.setup()
    args = _files(tmp_path, world.SUPPLIERS)
    first = zk_prove(**args, out=str(tmp_path / "evidence.json"))
    assert (first["batches"], first["proved"], first["from_cache"]) == (3, 3, 0)
    evidence = ScreeningEvidence.model_validate(json.loads((tmp_path / "evidence.json").read_text()))
    result = check_screening(
        evidence, world.commitment(), world.trusted(), [evidence.gap_root], allow_development=True
    )
    assert result.ok, result.failures
    assert evidence.gap_root == world.evidence().gap_root  # the lists file's keys give the same gap tree

    again = zk_prove(**args, out=str(tmp_path / "again.json"))
    assert (again["proved"], again["from_cache"]) == (0, 3)

    more = [*world.SUPPLIERS, Supplier("Baltic Parts UAB", "LT", 1)]
    args = _files(tmp_path, more)
    grown = zk_prove(**args, out=str(tmp_path / "grown.json"))
    assert (grown["batches"], grown["proved"], grown["from_cache"]) == (3, 1, 2)
    evidence = ScreeningEvidence.model_validate(json.loads((tmp_path / "grown.json").read_text()))
    commitment = commit(screened_leaves(more, world.SALT_SEED), world.CIRCUIT)
    assert check_screening(
        evidence, commitment, world.trusted(), [evidence.gap_root], allow_development=True
    ).ok


def test_deployment_entry_matches_the_flow_signature():
    import inspect

    import yaml

    from flows.zk_prove import zk_prove
    from tests.paths import REPO

    (entry,) = [
        d
        for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
        if d["name"] == "zk-prove"
    ]
    assert entry["entrypoint"] == "flows/zk_prove.py:zk_prove"
    signature = inspect.signature(zk_prove.fn).parameters
    required = {name for name, p in signature.items() if p.default is inspect.Parameter.empty}
    # every optional parameter is shown with its default; the required ones are asked for at each run
    # (a null default for them is refused by `prefect deploy` with 422)
    assert set(entry["parameters"]) == set(signature) - required
    assert required == {"suppliers", "lists", "out", "salt_seed"}
