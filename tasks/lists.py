"""Tasks of the ``lists-refresh`` flow: thin wrappers around :func:`core.service.refresh_lists`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event

from core import service
from core.lists_refresh import RefreshResult, report_markdown
from core.settings import Settings
from tasks.retry import LOCAL, TRANSIENT_IO

ARTIFACT_KEY = "lists-refresh"
CHANGED_EVENT = "cap.lists.changed"


@task(name="refresh-lists", **TRANSIENT_IO)
def refresh(settings: Settings, now: datetime, sources_path: str | None, allow_shrink: bool) -> RefreshResult:
    """Download, build and install; a transient download failure retries the whole refresh."""
    path = Path(sources_path) if sources_path else None
    return service.refresh_lists(
        settings, now, sources_path=path, allow_shrink=allow_shrink, actor="flow:lists-refresh"
    )


@task(name="publish-refresh", **LOCAL)
def publish(result: RefreshResult) -> None:
    """The markdown artifact ``lists-refresh``, and ``cap.lists.changed`` when the roots changed."""
    verdict = "changed" if result.changed else "unchanged"
    create_markdown_artifact(
        key=ARTIFACT_KEY, markdown=report_markdown(result), description=f"lists {verdict}"
    )
    if result.changed:
        emit_event(
            event=CHANGED_EVENT,
            resource={"prefect.resource.id": f"cap.lists.{result.sanctions_root}"},
            payload=result.model_dump(
                include={"sanctions_root", "previous_root", "sanctions_count", "previous_count"}
            ),
        )
