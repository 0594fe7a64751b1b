"""Retry policy of every task: only a :class:`CapError` marked ``transient`` (storage, SAP, the verify API, a
list download) is retried. Verification failures, bad input and configuration errors are final.
"""

from __future__ import annotations

from typing import Any

from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from core.errors import CapError


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry a transient :class:`CapError`, nothing else."""
    try:
        state.result()
    except CapError as exc:
        return exc.transient
    except Exception:  # the failure being judged: anything else is not worth retrying
        return False
    return False


TRANSIENT_IO: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_transient,
    "cache_policy": NO_CACHE,
}
"""Task options for storage I/O: 3 retries with jittered exponential backoff, transient errors only."""

LOCAL: dict[str, Any] = {"cache_policy": NO_CACHE}
"""Task options for local steps: no retries (they are not transient), never cached."""
