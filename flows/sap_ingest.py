"""Flow ``sap-ingest``: SAP OData → sanitised records → screening → commitments → proof → register → verify.

Orders the tasks of ``tasks/sap.py``; every rule lives in ``core/sap/pipeline.py`` (``cap sap ingest``
runs the same steps without Prefect). Parameters are the config path and the mode override; the
result is the run's summary (counts, roots, verdicts, violations by constraint, drift score), never a
name. Record carriers pass between tasks in memory, wrapped in ``quote`` so Prefect does not walk them.
Deployment ``sap-ingest-hourly`` in ``prefect.yaml``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.utilities.annotations import quote

from core.settings import Settings
from tasks import sap as t


@flow(name="sap-ingest", retries=0)
def sap_ingest(config_path: str, enforce_mode: str | None = None) -> dict[str, Any]:
    """One ingest run of the SAP system in ``config_path``; ``enforce_mode`` overrides the config's mode."""
    settings = Settings.from_env()
    now = datetime.now(UTC)
    config = t.load_config(config_path, enforce_mode)
    extracted = quote(t.extract(config, now))  # quote: in-memory records, never introspected by Prefect
    lists = quote(t.load_lists(config, now))
    screened = quote(t.screen(config, extracted, lists))
    commitments = t.commit(screened, now)
    built = quote(t.build_proof(settings, config, screened, commitments, lists, now))
    drift = t.drift(settings, built)
    entry = t.register(settings, built, now)
    verification = t.verify(settings, config, built, now)
    result = t.summarise(config, extracted, screened, built, entry, verification, drift)
    t.publish(result, drift)
    get_run_logger().info(
        "SAP ingest %s: %s (policy %s, verification %s); %d suppliers, %d UBOs; registry %s; drift %s",
        result.company_id,
        result.result.value,
        result.verdict.value,
        result.verification.result.value,
        result.supplier_count,
        result.ubo_count,
        result.registry_id,
        result.drift.score if result.drift else "n/a",
    )
    return result.model_dump(mode="json")
