"""``prefect deploy --all`` as docs/deployment.md documents it, against a real Prefect API (the session's).

The documented steps run as subprocesses of the real ``prefect`` CLI, non-interactively: create the process
work pool, deploy every entry of ``prefect.yaml``. Each deployment must then be registered with that pool,
with the schedules and concurrency limit the file declares. The same command on a copy of the file without
the work-pool declaration fails (the bug this guards against).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from tests.paths import REPO

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prefect")]
POOL = "cap-process"


def prefect_cli(*args: str, api_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_API_URL": api_url, "CAP_HOME": str(REPO), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def declared() -> list[dict]:
    return yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]


@pytest.fixture
def api_url(prefect_api) -> str:
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


def test_prefect_yaml_declares_its_work_pool_for_every_deployment():
    assert {d["work_pool"]["name"] for d in declared()} == {POOL}


def test_deploy_all_registers_every_deployment_with_the_pool(api_url):
    from prefect.client.orchestration import get_client

    created = prefect_cli("work-pool", "create", POOL, "--type", "process", "--overwrite", api_url=api_url)
    assert created.returncode == 0, created.stdout + created.stderr
    deployed = prefect_cli("deploy", "--all", api_url=api_url)
    with get_client(sync_client=True) as client:
        registered = {d.name: d for d in client.read_deployments() if d.work_pool_name == POOL}
        for d in registered.values():  # the session's API is shared: served deployments of the same names
            client.delete_deployment(d.id)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    for entry in declared():
        deployment = registered.get(entry["name"])
        assert deployment is not None, f"{entry['name']} is not registered with the pool {POOL}"
        assert len(deployment.schedules) == len(entry.get("schedules") or []), entry["name"]
        limit, options = deployment.global_concurrency_limit, deployment.concurrency_options
        assert limit is not None and limit.limit == entry["concurrency_limit"]["limit"], entry["name"]
        assert options is not None and options.collision_strategy == "CANCEL_NEW", entry["name"]


def test_deploy_all_without_the_pool_declaration_fails(api_url, tmp_path):
    doc = yaml.safe_load((REPO / "prefect.yaml").read_text())
    doc.pop("definitions")
    for entry in doc["deployments"]:
        entry.pop("work_pool")
    stripped = tmp_path / "prefect.yaml"
    stripped.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = prefect_cli("deploy", "--all", "--prefect-file", str(stripped), api_url=api_url)
    assert result.returncode != 0
    assert "work pool" in (result.stdout + result.stderr).lower()
