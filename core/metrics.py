"""Every Prometheus metric of CAP Verifier, defined once in one registry.

Two kinds, and they never mix:

- **Events** (counters, histograms) are emitted by the process where they happen: an API worker, a flow-run
  process, the CLI. Every label value a rule relies on is created at import (value 0), so the first failure is
  an increase from 0 that ``increase()`` sees, not a series that appears at 1. Under ``cap serve`` every child
  writes them to ``PROMETHEUS_MULTIPROC_DIR``; at exit a process folds its values into the directory's
  archive files (a counter must never go down) and deletes its own, and ``/metrics`` sums them.
- **State** (the gauges of :class:`ObservedState`: rotation phase, dual-accept time left, highest drift
  severity among the current registry entries, last good backup, last list refresh) is computed at scrape time
  from the data dir by :class:`StateCollector`, never left behind by a process that set it and exited. A gauge
  whose state is unknown (no backup yet, list refresh never ran) has no sample, so absence-aware rules decide.

Code paths import the metric they emit from here; ``/metrics`` serves :data:`REGISTRY` (or, with
``PROMETHEUS_MULTIPROC_DIR``, the multiprocess collector plus the state collector). Names follow the seed
document (``cap_enforce_*``, ``cap_drift_*``, ``cap_backup_*``, ``cap_restore_*``, ``cap_key_*``/
``cap_signatures_*``, ``cap_api_*``); ``monitoring/`` may only use names defined here.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import glob
import os
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.registry import Collector

from core.drift import DriftType
from core.modes import EnforcementMode
from core.observed import ObservedState  # re-exported: callers build it, the scrape reads it

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
DRIFT_BY_TYPE = Counter("cap_drift_by_type_total", "Drift items by type", ["drift_type"], registry=REGISTRY)
for _type in DriftType:  # every type a series at 0 before its first drift
    DRIFT_BY_TYPE.labels(_type.value)
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

# --- key rotation (seed Track D2) ---
SIGNATURES_CREATED = Counter(
    "cap_signatures_created_total", "Signatures made, by key id", ["kid"], registry=REGISTRY
)
SIGNATURES_VERIFIED = Counter(
    "cap_signatures_verified_total",
    "Signatures checked, by key id and status",
    ["kid", "status"],
    registry=REGISTRY,
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


# --- label values the rules and panels rely on: present at 0 before the first event ---
_INITIAL_LABELS: tuple[tuple[Counter, tuple[str, ...]], ...] = (
    (ENFORCE_TOTAL, ("success", "warning", "failure")),
    (BACKUP_TOTAL, ("success", "failure")),
    (RESTORE_TOTAL, ("success", "failure")),
    (LISTS_REFRESH_TOTAL, ("changed", "unchanged", "failure")),
    (VERIFY_RESULTS, ("ok", "warn", "fail")),
    (SAP_INGEST_RUNS, ("ok", "warn", "fail")),
    (SAP_INGEST_RECORDS, ("supplier_kept", "ubo_kept")),
)
for _counter, _values in _INITIAL_LABELS:
    for _value in _values:
        _counter.labels(_value)
for _mode in EnforcementMode:  # every mode a series at 0, so "mode changes" has data before the first
    ENFORCE_MODE_CHANGES.labels(_mode.value)


def declare_signers(kids: Iterable[str]) -> None:
    """A ``cap_signatures_created_total`` series at 0 for each key id (the live keyring's), if none yet."""
    for kid in kids:
        SIGNATURES_CREATED.labels(kid)


# --- state gauges, computed at scrape time ---


STATE_GAUGES: dict[str, tuple[str, str]] = {
    "rotation_phase": ("cap_key_rotation_phase", "Current key-rotation phase (0-3) of the live keyring"),
    "dual_accept_remaining_seconds": (
        "cap_dual_accept_time_remaining_seconds",
        "Seconds left in the dual-accept window of the live keyring (0 outside one)",
    ),
    "drift_severity_max": (
        "cap_drift_severity_score",
        "Highest drift severity (0-100) among the current registry entries (newest per subject) analysed",
    ),
    "backup_last_success": (
        "cap_backup_last_success_timestamp_seconds",
        "Unix time of the last good backup of this data dir (absent before the first)",
    ),
    "backup_size_bytes": ("cap_backup_size_bytes", "Archive size of the last good backup"),
    "lists_refresh_last_success": (
        "cap_lists_refresh_last_success_timestamp_seconds",
        "Unix time of the last list refresh that fetched and checked every list (absent if it never ran)",
    ),
    "lists_keys": ("cap_lists_keys", "Screening keys in the lists of the last good refresh"),
    "replica_caught_up": (
        "cap_replica_caught_up_timestamp_seconds",
        "Unix time the Litestream replica (the worst of them) last held every captured change (absent: off)",
    ),
    "replica_lag_seconds": (
        "cap_replica_lag_seconds",
        "Seconds since the Litestream replica (the worst of them) last held every captured change: the data "
        "a lost host would lose now (absent when replication is off)",
    ),
}


class StateCollector(Collector):
    """The state gauges from ``observe()`` at each scrape; without a source, the families with no sample."""

    def __init__(self, observe: Callable[[], ObservedState] | None = None) -> None:
        self.observe = observe

    def describe(self) -> Iterator[Metric]:
        return self._families(ObservedState())

    def collect(self) -> Iterator[Metric]:
        return self._families(self.observe() if self.observe is not None else ObservedState())

    @staticmethod
    def _families(state: ObservedState) -> Iterator[Metric]:
        for field_name, (name, doc) in STATE_GAUGES.items():
            family = GaugeMetricFamily(name, doc)
            value = getattr(state, field_name)
            if value is not None:
                family.add_metric([], float(value))
            yield family


REGISTRY.register(StateCollector())  # names only: each scrape observes its own state (scrape_registry)
STATE_NAMES = frozenset(name for name, _ in STATE_GAUGES.values())


class _EventsOf(Collector):
    """The counters and histograms of ``registry`` (its state families left out)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        return (m for m in self.registry.collect() if m.name not in STATE_NAMES)


def scrape_registry(observed: ObservedState) -> CollectorRegistry:
    """What ``/metrics`` serves: the events of this process (or, with ``PROMETHEUS_MULTIPROC_DIR``, of every
    process that wrote there) and the state gauges as ``observed`` at this scrape."""
    registry = CollectorRegistry(auto_describe=False)
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    registry.register(_MultiProcessFiles(path) if path else _EventsOf(REGISTRY))
    registry.register(StateCollector(lambda: observed))
    return registry


class _MultiProcessFiles(Collector):
    """The sum over a multiprocess directory's files, read while no exiting process folds its own in."""

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self) -> Iterator[Metric]:
        with _files_lock(self.path, exclusive=False):
            files = glob.glob(os.path.join(self.path, "*.db"))
            return iter(list(multiprocess.MultiProcessCollector.merge(files, accumulate=True)))  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def _files_lock(path: str, *, exclusive: bool) -> Iterator[None]:
    fd = os.open(os.path.join(path, ".files.lock"), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def fold_process_files(path: str, pid: int) -> None:
    """Add ``pid``'s counter and histogram values to the directory's ``*_archive.db`` files and delete its
    own, so a server that ran a thousand flow runs reads a few files per scrape, with the same sums."""
    with _files_lock(path, exclusive=True):
        for kind in ("counter", "histogram"):
            own = os.path.join(path, f"{kind}_{pid}.db")
            if not os.path.exists(own):
                continue
            archive = MmapedDict(os.path.join(path, f"{kind}_archive.db"))  # type: ignore[no-untyped-call]
            try:
                for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(own):  # type: ignore[no-untyped-call]
                    total, _ = archive.read_value(key)  # type: ignore[no-untyped-call]
                    archive.write_value(key, total + value, timestamp)  # type: ignore[no-untyped-call]
            finally:
                archive.close()  # type: ignore[no-untyped-call]
            os.remove(own)
        multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def _fold_at_exit() -> None:
    """At exit: this process's files into the archive (the sums never go down), its live gauges dropped."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path and os.path.isdir(path):
        fold_process_files(path, os.getpid())


atexit.register(_fold_at_exit)
