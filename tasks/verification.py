"""Prefect tasks of the verification run: one core call each, retried only on transient storage errors.

Entries are handled in batches (one task run per step, not per entry): a task run costs a few ms and
about 17 KB of Prefect database, which an hourly run over thousands of entries should not multiply.
Results are never cached: every run reads live state.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from core import reverify, service, status
from core.anchors import trust_anchors
from core.drift import DriftReport, drift_event
from core.keyring import Keyring
from core.modes import EnforcementMode
from core.registry import RegistryEntry
from core.settings import Settings
from core.trust import TrustAnchors
from core.verify import Report
from tasks.retry import retry_transient

ARTIFACT_KEY = "verification-run"


class Trust:
    """The current keyring and sanctions root, handed from task to task.

    A plain holder on purpose: Prefect walks pydantic task parameters with ``dict(model)``, which breaks on
    :class:`~core.keyring.Keyring` (its ``keys`` field shadows ``Mapping.keys``).
    """

    __slots__ = ("anchors", "keyring", "sanctions_root")

    def __init__(self, keyring: Keyring, sanctions_root: str | None, anchors: TrustAnchors) -> None:
        self.keyring, self.sanctions_root, self.anchors = keyring, sanctions_root, anchors


_IO: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [1, 2, 4],
    "retry_condition_fn": retry_transient,
    "cache_policy": NO_CACHE,
}
_PURE: dict[str, Any] = {"cache_policy": NO_CACHE}


@task(name="load-entries", **_IO)
def load_entries(settings: Settings, limit: int | None = None) -> list[RegistryEntry]:
    return reverify.load_registry_entries(settings, limit)


@task(name="load-trust", **_IO)
def load_trust(settings: Settings, lists_path: str | None = None) -> Trust:
    """The current keyring, the sanctions root in force and the trust anchors (installed + given lists)."""
    given = Path(lists_path) if lists_path else None
    root = reverify.current_sanctions_root(settings, given)
    anchors = trust_anchors(settings, lists=[given] if given else [])
    return Trust(service.load_local_keyring(settings), root, anchors)


@task(name="reverify-entries", **_PURE)
def reverify_entries(
    entries: list[RegistryEntry], trust: Trust, mode: EnforcementMode, now: datetime
) -> list[Report]:
    return [
        reverify.reverify_entry(
            e,
            keyring=trust.keyring,
            sanctions_root=trust.sanctions_root,
            trust=trust.anchors,
            mode=mode,
            now=now,
        )
        for e in entries
    ]


@task(name="analyse-drift", **_PURE)
def analyse_drift(
    entries: list[RegistryEntry], reports: list[Report], trust: Trust, expected_gap: timedelta
) -> list[DriftReport | None]:
    return [
        reverify.entry_drift(e, entries, r, keyring=trust.keyring, expected_gap=expected_gap)
        for e, r in zip(entries, reports, strict=True)
    ]


@task(name="book-drift", **_IO)
def book_drift(
    settings: Settings, entries: list[RegistryEntry], drifts: list[DriftReport | None], now: datetime
) -> int:
    """Each entry's score into the status book: ``cap_drift_severity_score`` reports the current ones."""
    return status.record_entry_drift(settings.layout, entries, drifts, now)


@task(name="publish-results", **_PURE)
def publish_results(
    entries: list[RegistryEntry], reports: list[Report], drifts: list[DriftReport | None]
) -> UUID:
    """The table artifact ``verification-run``: one row per entry, verdict and drift."""
    rows = [reverify.run_row(e, r, d) for e, r, d in zip(entries, reports, drifts, strict=True)]
    summary = reverify.run_summary(reports, drifts)
    return create_table_artifact(key=ARTIFACT_KEY, table=rows, description=reverify.summary_text(summary))


@task(name="emit-drift-events", **_PURE)
def emit_drift_events(drifts: list[DriftReport | None]) -> int:
    """One ``cap.drift.detected`` event per medium or high drift; returns how many were emitted."""
    events = [drift_event(d) for d in drifts if d is not None and d.alerting]
    for e in events:
        emit_event(event=e.event, resource=e.resource, payload=e.payload)
    return len(events)
