"""Flow ``verification-run``: re-verify registry entries and drift-analyse each against its baseline.

Orders the tasks of ``tasks/verification.py``; the checks live in ``core/verify.py`` and ``core/drift.py``.
Books each entry's drift score in the status book (``cap_drift_severity_score`` reports the highest among
the current entries), publishes the table artifact ``verification-run`` and a ``cap.drift.detected`` event
per medium or high drift. Drift never fails the run; a run fails only when the registry or keyring cannot
be read.
Deployment ``verification-hourly`` in ``prefect.yaml`` schedules it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import flow

from core.modes import EnforcementMode
from core.reverify import run_summary
from core.settings import Settings
from flows.forms import param, verification_run_name
from tasks import verification as t


@flow(name="verification-run", retries=0, flow_run_name=verification_run_name)
def verification_run(
    mode: EnforcementMode = param(
        "Enforcement mode", EnforcementMode.RELAXED, description="strict fails all; relaxed warns on minor"
    ),
    limit: int = param(
        "Newest entries", 0, description="Re-verify this many, newest first; 0: all", minimum=0
    ),
    expected_gap_hours: float = param(
        "Expected gap (h)", 24.0, description="Drift: a longer gap since the baseline counts as drift"
    ),
    data_dir: str = param("Data dir", "", description="Empty: CAP_DATA_DIR, else ./var"),
    lists_path: str = param("Lists file", "", description="Empty: <data>/lists/lists.json when present"),
) -> dict[str, int]:
    """Re-verify up to ``limit`` entries (newest first; all by default) under ``mode``; returns the counts."""
    settings = Settings.from_env(data_dir=data_dir or None)
    entries = t.load_entries(settings, limit or None)
    if not entries:
        t.publish_results([], [], [])
        return run_summary([], [])
    trust = t.load_trust(settings, lists_path or None)
    now = datetime.now(UTC)
    reports = t.reverify_entries(entries, trust, mode, now)
    drifts = t.analyse_drift(entries, reports, trust, timedelta(hours=expected_gap_hours))
    t.book_drift(settings, entries, drifts, now)
    t.publish_results(entries, reports, drifts)
    t.emit_drift_events(drifts)
    return run_summary(reports, drifts)
