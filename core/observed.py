"""What the data dir says now, as the state gauges of ``/metrics`` read it (:mod:`core.metrics`).

Apart from :mod:`core.metrics` so that :mod:`core.status`, which computes it, does not load
``prometheus_client`` into every one-shot ``cap`` process.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ObservedState:
    """What the data dir says now; ``None`` means unknown (the gauge then has no sample)."""

    rotation_phase: int | None = None
    dual_accept_remaining_seconds: float | None = None
    drift_severity_max: int | None = None
    backup_last_success: float | None = None
    backup_size_bytes: int | None = None
    lists_refresh_last_success: float | None = None
    lists_keys: int | None = None
    replica_caught_up: float | None = None
    replica_lag_seconds: float | None = None
