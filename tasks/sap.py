"""Prefect tasks of the SAP ingest: one :mod:`core.sap.pipeline` step each.

Records with names travel between tasks in memory only: nothing here is cached or persisted
(``NO_CACHE``, ``persist_result=False``), and Prefect sends no task arguments to its API. Extraction and
remote verification retry only transient errors (``SapError``/``StorageError``/``RemoteVerifyError``
with ``transient=True``); everything else, including a FAIL verdict (a result), is final.
"""

from __future__ import annotations

from datetime import datetime

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from core.commitments import Commitments
from core.drift import DriftReport, drift_event
from core.modes import EnforcementMode
from core.prover import ProofBuild
from core.registry import RegistryEntry
from core.sap import pipeline as p
from core.sap.config import SapConfig
from core.sap.remote_verify import VerifyOutcome
from core.settings import Settings
from tasks.retry import retry_transient

REPORT_KEY = "sap-ingest-report"
_PRIVATE = {"cache_policy": NO_CACHE, "persist_result": False}
_IO = {"retries": 2, "retry_delay_seconds": [2, 10], "retry_condition_fn": retry_transient, **_PRIVATE}


@task(name="sap-load-config", **_PRIVATE)
def load_config(config_path: str, enforce_mode: str | None = None) -> SapConfig:
    return p.load_ingest_config(config_path, EnforcementMode(enforce_mode) if enforce_mode else None)


@task(name="sap-extract", **_IO)
def extract(config: SapConfig, now: datetime) -> p.Extracted:
    return p.extract_records(config, now)


@task(name="sap-load-lists", **_PRIVATE)
def load_lists(config: SapConfig, now: datetime) -> p.ScreeningLists | None:
    return p.load_screening_lists(config, now)


@task(name="sap-screen", **_PRIVATE)
def screen(config: SapConfig, extracted: p.Extracted, lists: p.ScreeningLists | None) -> p.Screened:
    return p.screen_records(extracted, lists, config.company_secret())


@task(name="sap-commit", **_PRIVATE)
def commit(screened: p.Screened, now: datetime) -> Commitments:
    return p.commit_records(screened, now)


@task(name="sap-build-proof", **_PRIVATE)
def build_proof(
    settings: Settings,
    config: SapConfig,
    screened: p.Screened,
    commitments: Commitments,
    lists: p.ScreeningLists | None,
    now: datetime,
) -> ProofBuild:
    return p.build_ingest_proof(settings, config, screened, commitments, lists, now)


@task(name="sap-drift", **_PRIVATE)
def drift(settings: Settings, built: ProofBuild) -> DriftReport | None:
    return p.drift_against_baseline(settings, built)


@task(name="sap-register", **_IO)
def register(settings: Settings, built: ProofBuild, now: datetime) -> RegistryEntry:
    return p.register_ingest_proof(settings, built, now)


@task(name="sap-verify", **_IO)
def verify(settings: Settings, config: SapConfig, built: ProofBuild, now: datetime) -> VerifyOutcome:
    return p.verify_ingest_proof(settings, config, built, now)


@task(name="sap-summarise", **_PRIVATE)
def summarise(
    config: SapConfig,
    extracted: p.Extracted,
    screened: p.Screened,
    built: ProofBuild,
    entry: RegistryEntry,
    verification: VerifyOutcome,
    report: DriftReport | None,
) -> p.IngestResult:
    return p.summarise(config, extracted, screened, built, entry, verification, report)


@task(name="sap-publish", **_PRIVATE)
def publish(result: p.IngestResult, report: DriftReport | None) -> None:
    """The run's markdown artifact (counts, roots, verdicts) and, for medium/high drift, a drift event."""
    create_markdown_artifact(
        key=REPORT_KEY,
        markdown=report_markdown(result),
        description=f"SAP ingest {result.company_id}: {result.result.value}",
    )
    if report is not None and report.alerting:
        event = drift_event(report)
        emit_event(event=event.event, resource=event.resource, payload=event.payload)


def report_markdown(result: p.IngestResult) -> str:
    """A two-column table of the summary (no names: the summary holds none)."""
    rows = [
        ("result", result.result.value),
        ("policy verdict", result.verdict.value),
        ("verification", f"{result.verification.result.value} ({result.verification.via})"),
        ("suppliers", f"{result.supplier_count} of {result.suppliers_seen}"),
        ("ubos", str(result.ubo_count)),
        ("violations", ", ".join(f"{k}={v}" for k, v in result.violations.items()) or "none"),
        ("company root", f"`{result.company_root}`"),
        ("registry", result.registry_id),
        ("drift", f"{result.drift.score} ({result.drift.level})" if result.drift else "no baseline"),
    ]
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows) + "\n"
