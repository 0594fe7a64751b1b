"""The one global concurrency limit for mutations of live state (restore, key rotation, backup reads).

``cap-mutation`` (limit 1) is shared by every flow that changes or snapshots the live data dir, so only
one of them runs at a time across processes and deployments. :func:`mutation_slot` creates the limit
if missing and occupies it with ``strict=True`` (a missing limit fails instead of silently allowing
everything); a held slot makes the next caller fail fast after ``timeout_seconds``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

MUTATION_LIMIT = "cap-mutation"
SLOT_TIMEOUT_S = 10


def ensure_mutation_limit(name: str = MUTATION_LIMIT) -> None:
    """Create the global concurrency limit (limit 1) if it is missing."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):  # another flow may create it at the same moment
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


@contextlib.contextmanager
def mutation_slot(timeout_seconds: float = SLOT_TIMEOUT_S) -> Iterator[None]:
    """Hold the ``cap-mutation`` slot. Raises ``AcquireConcurrencySlotTimeoutError`` when it is busy."""
    ensure_mutation_limit()
    with concurrency(MUTATION_LIMIT, occupy=1, strict=True, timeout_seconds=timeout_seconds):
        yield
