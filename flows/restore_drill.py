"""Flow ``restore-drill``: restore the Litestream replica's latest point into a scratch dir and prove it.

Orders two tasks: :func:`core.backup.drill.run_drill` (the eight point-in-time restore steps into
``<data>/run/drill-<time>``, a sample of registry entries re-verified with the same verdicts as live, the
scratch dir removed) and the ``restore-drill`` markdown artifact (receipt table + sample). Without a replica
URL (parameter or ``CAP_REPLICA_URL``) the run completes as skipped: replication is off.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from core.backup.drill import DEFAULT_SAMPLE, DrillReport, run_drill
from core.backup.replica import REPLICA_ENV
from core.backup.report import restore_markdown
from core.settings import Settings
from flows.forms import param
from tasks.retry import LOCAL, TRANSIENT_IO

DRILL_KEY = "restore-drill"


@task(name="drill-restore-latest", **TRANSIENT_IO)
def drill(settings: Settings, replica_url: str, sample: int) -> DrillReport:
    return run_drill(settings, replica_url, now=datetime.now(UTC), sample=sample)


@task(name="publish-drill-report", **LOCAL)
def publish(report: DrillReport) -> UUID:
    point = report.receipt.replica.reached if report.receipt.replica else None
    lines = [
        f"# Restore drill of {report.replica_url}",
        f"Point reached: {point or 'unknown'}; {report.restored_entries} registry entries restored.",
        f"Sampled {len(report.sampled)} entries: restored verdicts equal live for every one also live.",
        "",
        restore_markdown(report.receipt),
        "",
        "```json",
        json.dumps([s.model_dump(mode="json") for s in report.sampled], indent=1),
        "```",
    ]
    return create_markdown_artifact(key=DRILL_KEY, markdown="\n".join(lines), description="restore drill")


@flow(name="restore-drill", retries=0)
def restore_drill(
    replica_url: str = param(
        "Replica", "", description="file://DIR or s3://bucket/prefix; empty: CAP_REPLICA_URL"
    ),
    sample: int = param("Sample", DEFAULT_SAMPLE, description="Registry entries re-verified", ge=1, le=1000),
) -> dict[str, Any]:
    """Restore the latest replicated point into a scratch dir, check it, compare verdicts (signed receipt)."""
    url = replica_url or os.environ.get(REPLICA_ENV, "")
    if not url:
        return {"skipped": f"replication is off: no replica URL and no {REPLICA_ENV}"}
    report = drill(Settings.from_env(), url, sample)
    publish(report)
    return report.model_dump(mode="json")
