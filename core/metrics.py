"""Every Prometheus metric of CAP Verifier, defined once in one registry.

Code paths import the metric they emit from here; ``/metrics`` serves :data:`REGISTRY` (or, with
several API worker processes, the multiprocess collector over ``PROMETHEUS_MULTIPROC_DIR``).
Names follow the seed document (``cap_enforce_*``, ``cap_drift_*``, ``cap_backup_*``, ``cap_restore_*``,
``cap_key_*``/``cap_signatures_*``, ``cap_api_*``); ``monitoring/`` may only use names defined here.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_SLOW = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

# --- enforcement (seed Track B1) ---
ENFORCE_TOTAL = Counter("cap_enforce_total", "Enforcement decisions by result", ["result"], registry=REGISTRY)
ENFORCE_DURATION = Histogram(
    "cap_enforce_duration_seconds", "Time to evaluate and enforce a policy", buckets=_FAST, registry=REGISTRY
)
ENFORCE_VIOLATIONS = Counter(
    "cap_enforce_constraint_violations_total",
    "Constraint violations by constraint",
    ["constraint"],
    registry=REGISTRY,
)
ENFORCE_MODE_CHANGES = Counter(
    "cap_enforce_mode_changes_total", "Changes of the enforcement mode in use", ["mode"], registry=REGISTRY
)

# --- drift (seed Track B2) ---
DRIFT_DETECTED = Counter("cap_drift_detected_total", "Drift analyses that found drift", registry=REGISTRY)
DRIFT_SEVERITY = Gauge(
    "cap_drift_severity_score", "Severity score (0-100) of the last drift analysis", registry=REGISTRY
)
DRIFT_BY_TYPE = Counter("cap_drift_by_type_total", "Drift items by type", ["drift_type"], registry=REGISTRY)
DRIFT_DURATION = Histogram(
    "cap_drift_analysis_duration_seconds", "Time to analyse drift", buckets=_FAST, registry=REGISTRY
)

# --- verification ---
VERIFY_RESULTS = Counter(
    "cap_verify_results_total", "Verification reports by result", ["result"], registry=REGISTRY
)

# --- backup and restore (seed Track D1) ---
BACKUP_TOTAL = Counter("cap_backup_total", "Backups by result", ["result"], registry=REGISTRY)
BACKUP_DURATION = Histogram(
    "cap_backup_duration_seconds", "Backup duration", buckets=_SLOW, registry=REGISTRY
)
BACKUP_SIZE = Gauge("cap_backup_size_bytes", "Size of the last backup archive", registry=REGISTRY)
BACKUP_LAST_SUCCESS = Gauge(
    "cap_backup_last_success_timestamp_seconds", "Unix time of the last good backup", registry=REGISTRY
)
RESTORE_TOTAL = Counter("cap_restore_total", "Restores by result", ["result"], registry=REGISTRY)
RESTORE_DURATION = Histogram(
    "cap_restore_duration_seconds", "Restore duration", buckets=_SLOW, registry=REGISTRY
)

# --- sanctions-list refresh (ORR P1-CMP-09) ---
LISTS_REFRESH_TOTAL = Counter(
    "cap_lists_refresh_total",
    "List refreshes by result (changed, unchanged, failure)",
    ["result"],
    registry=REGISTRY,
)
LISTS_REFRESH_LAST_SUCCESS = Gauge(
    "cap_lists_refresh_last_success_timestamp_seconds",
    "Unix time of the last refresh that fetched and checked every list",
    registry=REGISTRY,
)
LISTS_KEYS = Gauge("cap_lists_keys", "Screening keys in the lists in force", registry=REGISTRY)

# --- key rotation (seed Track D2) ---
KEY_ROTATION_PHASE = Gauge("cap_key_rotation_phase", "Current key-rotation phase (0-3)", registry=REGISTRY)
SIGNATURES_CREATED = Counter(
    "cap_signatures_created_total", "Signatures made, by key id", ["kid"], registry=REGISTRY
)
SIGNATURES_VERIFIED = Counter(
    "cap_signatures_verified_total",
    "Signatures checked, by key id and status",
    ["kid", "status"],
    registry=REGISTRY,
)
DUAL_ACCEPT_REMAINING = Gauge(
    "cap_dual_accept_time_remaining_seconds", "Seconds left in the dual-accept window", registry=REGISTRY
)
KEY_ROTATIONS = Counter(
    "cap_key_rotations_total", "Completed key-rotation phase transitions", registry=REGISTRY
)

# --- REST API (seed Track A) ---
API_REQUESTS = Counter(
    "cap_api_requests_total",
    "API requests by endpoint and status code",
    ["endpoint", "status_code"],
    registry=REGISTRY,
)
API_LATENCY = Histogram(
    "cap_api_latency_seconds",
    "API request latency by endpoint",
    ["endpoint"],
    buckets=_FAST,
    registry=REGISTRY,
)
API_AUTH_FAILURES = Counter(
    "cap_api_auth_failures_total", "Rejected API credentials by reason", ["reason"], registry=REGISTRY
)

# --- SAP ingest (SPEC §4) ---
SAP_INGEST_RECORDS = Counter(
    "cap_sap_ingest_records_total",
    "SAP ingest records by outcome (supplier_kept, ubo_kept, dropped_<reason code>)",
    ["outcome"],
    registry=REGISTRY,
)
SAP_INGEST_RUNS = Counter(
    "cap_sap_ingest_runs_total", "SAP ingest runs by overall result", ["result"], registry=REGISTRY
)
