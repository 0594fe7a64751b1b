"""Tasks of the ``lists-refresh`` flow: thin wrappers around :func:`core.service.refresh_lists`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event

from core import service
from core.lists_refresh import RefreshResult
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
    rows = "\n".join(f"| {s.format} | {s.location} | {s.bytes:,} | `{s.sha3_256}` |" for s in result.sources)
    verdict = "changed" if result.changed else "unchanged"
    create_markdown_artifact(
        key=ARTIFACT_KEY,
        markdown=(
            f"# Lists refresh: {verdict}\n\n"
            f"- sanctions root `{result.sanctions_root}` ({result.sanctions_count:,} screening keys); "
            f"before `{result.previous_root}` ({result.previous_count})\n"
            f"- jurisdiction root `{result.jurisdiction_root}`\n- installed at `{result.lists_path}`\n\n"
            f"| format | source | bytes | SHA3-256 |\n|---|---|---|---|\n{rows}\n"
        ),
        description=f"sanctions lists {verdict}",
    )
    if result.changed:
        emit_event(
            event=CHANGED_EVENT,
            resource={"prefect.resource.id": f"cap.lists.{result.sanctions_root}"},
            payload={
                "sanctions_root": result.sanctions_root,
                "previous_root": result.previous_root,
                "sanctions_count": result.sanctions_count,
                "previous_count": result.previous_count,
            },
        )
