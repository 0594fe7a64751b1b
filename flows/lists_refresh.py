"""Flow ``lists-refresh``: fetch the sanctions and high-risk lists, install them when they changed.

Orders the tasks of ``tasks/lists.py``; the rules (sources file, size cap, shrink guard, audit) live in
``core/lists_refresh.py``. Runs under the global ``cap-mutation`` slot so a restore cannot swap the data dir
away under it. Publishes the markdown artifact ``lists-refresh`` and, when the roots changed, the event
``cap.lists.changed`` (the next verification run screens against the new root). Deployment
``lists-refresh-daily`` in ``prefect.yaml`` schedules it once ``<data>/lists/sources.yaml`` exists.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow

from core.settings import Settings
from tasks import lists as t
from tasks.locks import mutation_slot

SLOT_TIMEOUT_S = 120  # may wait for a backup's snapshot


@flow(name="lists-refresh", retries=0)
def lists_refresh(
    data_dir: str | None = None, sources_path: str | None = None, allow_shrink: bool = False
) -> dict[str, Any]:
    """Refresh from ``sources_path`` (default ``<data>/lists/sources.yaml``); returns roots and counts."""
    settings = Settings.from_env(data_dir=data_dir)
    with mutation_slot(SLOT_TIMEOUT_S):
        result = t.refresh(settings, datetime.now(UTC), sources_path, allow_shrink)
    t.publish(result)
    return result.model_dump(mode="json")
