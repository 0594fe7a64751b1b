"""The Prefect runner child of ``cap serve``: serves the project's deployments with their schedules.

Deployments come from ``prefect.yaml`` (the single source of truth: entrypoint, schedules, parameters,
concurrency, tags); an entry whose flow file does not exist yet is skipped with a warning. Flows found in
``flows/`` that no entry names are served too, under their own name and without a schedule, so a new flow
can be triggered before it is declared. Run as ``python -m deployments.runner [PROJECT_DIR]``; needs
``PREFECT_API_URL`` (``cap serve`` exports it). SIGTERM stops the runner, cancelling in-flight runs.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig
from prefect.deployments.runner import RunnerDeployment
from prefect.flows import load_flow_from_entrypoint
from prefect.runner import Runner
from prefect.schedules import Cron, Interval, Schedule

log = logging.getLogger("cap.runner")
RUNNER_NAME = "cap-verifier"
RUN_LIMIT = 4


def _schedules(items: list[dict[str, Any]] | None) -> list[Schedule]:
    out = []
    for item in items or []:
        if "cron" in item:
            out.append(Cron(item["cron"], timezone=item.get("timezone"), active=item.get("active", True)))
        elif "interval" in item:
            out.append(
                Interval(item["interval"], timezone=item.get("timezone"), active=item.get("active", True))
            )
    return out


def _concurrency(value: Any) -> int | ConcurrencyLimitConfig | None:
    return ConcurrencyLimitConfig(**value) if isinstance(value, dict) else value


def declared(project: Path) -> list[dict[str, Any]]:
    path = project / "prefect.yaml"
    doc = yaml.safe_load(path.read_text()) if path.exists() else None
    return [d for d in (doc or {}).get("deployments") or [] if isinstance(d, dict)]


async def from_entry(project: Path, entry: dict[str, Any]) -> RunnerDeployment | None:
    entrypoint = str(entry.get("entrypoint", ""))
    if not (project / entrypoint.partition(":")[0]).is_file():
        log.warning("skipping deployment %s: %s does not exist yet", entry.get("name"), entrypoint)
        return None
    flow = load_flow_from_entrypoint(str(project / entrypoint))
    # `null` in prefect.yaml lists a parameter without a deployment default: the flow's own default applies,
    # or the form asks. Sent as None it fails the schema of a required or non-None field (HTTP 422).
    parameters = {k: v for k, v in (entry.get("parameters") or {}).items() if v is not None}
    return await flow.ato_deployment(
        name=entry["name"],
        parameters=parameters,
        schedules=_schedules(entry.get("schedules")),
        tags=entry.get("tags"),
        concurrency_limit=_concurrency(entry.get("concurrency_limit")),
        description=entry.get("description"),
    )


def discovered_flows(project: Path) -> list[Flow[..., Any]]:
    flows: list[Flow[..., Any]] = []
    for path in sorted((project / "flows").glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = importlib.import_module(f"flows.{path.stem}")
        flows += [v for v in vars(module).values() if isinstance(v, Flow) and v not in flows]
    return flows


async def project_deployments(project: Path) -> list[RunnerDeployment]:
    deployments = [d for d in [await from_entry(project, e) for e in declared(project)] if d is not None]
    named = {d.flow_name for d in deployments}
    for flow in discovered_flows(project):
        if flow.name not in named:
            deployments.append(await flow.ato_deployment(name=flow.name))
    return deployments


async def serve(project: Path) -> None:
    deployments = await project_deployments(project)
    runner = Runner(name=RUNNER_NAME, pause_on_shutdown=False, limit=RUN_LIMIT)
    for deployment in deployments:
        await runner.add_deployment(deployment)
    names = ", ".join(f"{d.flow_name}/{d.name}" for d in deployments) or "none yet"
    print(f"runner: serving {len(deployments)} deployment(s): {names}", file=sys.stderr, flush=True)
    await runner.start()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    project = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    sys.path.insert(0, str(project))
    asyncio.run(serve(project))


if __name__ == "__main__":
    main()
