"""Prefect on PostgreSQL, as docs/deployment.md ("Prefect on PostgreSQL") tells an operator to run it.

One module-scoped stack, all real processes: ``prefect server start`` on a free loopback port with its
database on the test PostgreSQL (``postgresql+asyncpg://``, migrated on start), ``prefect work-pool create``
of the pool ``prefect.yaml`` declares, ``prefect --no-prompt deploy --all`` from the repository root, and a
``prefect worker start`` process worker for that pool. Then:

- every declared deployment is registered with the pool, its schedules, concurrency limit and a pull step
  that puts the worker in the checkout (``CAP_HOME``); the same deploy without the pool declaration fails;
- the ``rotate-signing-key`` deployment, triggered through the REST API, runs in the worker, pauses for the
  sign-switch approval, refuses an incomplete answer (still paused), and an approval sent through Prefect's
  REST API (``POST /flow_runs/{id}/resume``, what an operator's script or curl does) lets it continue to
  Completed, with the approved switch in the keyring on disk.

The scheduler service is off (``--no-scheduler``): the declared schedules would otherwise start a
verification run or a backup in the worker at an arbitrary moment of the test. Everything else is the
server's default configuration, none of the SQLite tuning the session's harness applies.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.live import free_port
from tests.paths import REPO

# one group: the module-scoped Prefect server and PostgreSQL start once, on one worker (loadgroup would
# otherwise spread these tests and start the stack on both)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prefect_postgres")]
POOL = "cap-process"
ROTATION = "rotate-signing-key/rotate-signing-key"
CLI_TIMEOUT_S = 300
RUN_TIMEOUT_S = 180  # trigger to Paused on a loaded 2-core machine: worker poll, engine start, flow imports


def declared() -> list[dict[str, Any]]:
    return yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]


@dataclass
class Stack:
    api: str  # http://127.0.0.1:<port>/api
    env: dict[str, str]  # what an operator's shell has: PREFECT_API_URL, CAP_HOME, CAP_DATA_DIR
    data_dir: Path
    logs: Path
    deployed: subprocess.CompletedProcess[str]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return prefect_cli(*args, env=self.env)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = httpx.post(f"{self.api}{path}", json=body, timeout=30)
        assert response.is_success, f"POST {path}: {response.status_code} {response.text}"
        return response.json()

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.api}{path}", timeout=30)
        assert response.is_success, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {p.name}\n" + p.read_text(errors="replace")[-3000:] for p in sorted(self.logs.glob("*.log"))
        )


def prefect_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def _base_env(home: Path) -> dict[str, str]:
    """The test process's environment minus its Prefect test-server tuning, with a private PREFECT_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_SERVER_")}
    for var in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE"):
        env.pop(var, None)
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        NO_COLOR="1",
    )
    return env


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes], grace: float = 20) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_healthy(api: str, server: subprocess.Popen[bytes], log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"prefect server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{api}/health", timeout=2).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"prefect server did not answer {api}/health in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _rotation_ready_data_dir(data_dir: Path) -> str:
    """A data dir whose signing-key rotation stands at dual-accept (phases 0 and 1 done in-process, as
    ``cap keys rotate`` does them); returns the new key id the sign-switch will make the default."""
    from core import service
    from core.rotation import make_request
    from core.settings import Settings

    settings = Settings.from_env({"CAP_DATA_DIR": str(data_dir)})
    now = datetime.now(UTC)
    service.keygen(settings, now=now, owner="Test Co")
    new_kid = service.rotate_signing_key(settings, make_request(0), now).new_kid
    service.rotate_signing_key(settings, make_request(1, duration="2h"), now)
    assert new_kid is not None
    return new_kid


@pytest.fixture(scope="module")
def stack(pg_server, tmp_path_factory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("prefect-pg")
    logs = root / "logs"
    logs.mkdir()
    database = pg_server.create_database(prefix="prefect")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    server_env = _base_env(root / "server-home")
    server_env["PREFECT_API_DATABASE_CONNECTION_URL"] = database.replace(
        "postgresql://", "postgresql+asyncpg://"
    )
    server_argv = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    server = _start(
        [*server_argv, "--port", str(port), "--no-scheduler", "--no-ui"],
        server_env,
        logs / "server.log",
    )
    worker = None
    try:
        _wait_healthy(api, server, logs / "server.log")
        env = _base_env(root / "operator-home")
        env.update(PREFECT_API_URL=api, CAP_HOME=str(REPO), CAP_DATA_DIR=str(root / "var"))
        created = prefect_cli("work-pool", "create", POOL, "--type", "process", env=env)
        assert created.returncode == 0, created.stdout + created.stderr
        worker_env = {**env, "PREFECT_HOME": str(root / "worker-home"), "PREFECT_WORKER_QUERY_SECONDS": "1"}
        worker = _start(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--type", "process"],
            worker_env,
            logs / "worker.log",
        )
        deployed = prefect_cli("deploy", "--all", env=env)
        yield Stack(api, env, root / "var", logs, deployed)
    finally:
        if worker is not None:
            _stop(worker)
        _stop(server, grace=2)  # a throwaway server: no need to wait out uvicorn's 5 s graceful shutdown
        pg_server.drop_database(database)


@pytest.fixture(scope="module")
def registered(stack: Stack) -> dict[str, dict[str, Any]]:
    assert stack.deployed.returncode == 0, stack.deployed.stdout + stack.deployed.stderr
    found = stack.post("/deployments/filter", {"work_pools": {"name": {"any_": [POOL]}}})
    return {d["name"]: d for d in found}


def test_prefect_yaml_declares_its_work_pool_for_every_deployment():
    assert {d["work_pool"]["name"] for d in declared()} == {POOL}


def test_deploy_all_registers_every_deployment_with_the_pool(stack: Stack, registered):
    pools = {p["name"]: p["type"] for p in stack.post("/work_pools/filter", {})}
    assert pools.get(POOL) == "process"
    for entry in declared():
        deployment = registered.get(entry["name"])
        assert deployment is not None, f"{entry['name']} is not registered with the pool {POOL}"
        assert len(deployment["schedules"]) == len(entry.get("schedules") or []), entry["name"]
        limit = deployment["global_concurrency_limit"]
        assert limit is not None and limit["limit"] == entry["concurrency_limit"]["limit"], entry["name"]
        assert deployment["concurrency_options"]["collision_strategy"] == "CANCEL_NEW", entry["name"]
        (pull,) = deployment["pull_steps"]  # the worker runs each flow from the checkout CAP_HOME names
        directory = pull["prefect.deployments.steps.set_working_directory"]["directory"]
        assert Path(directory) == REPO, entry["name"]
    assert len(registered) == len(declared())


def test_deploy_all_without_the_pool_declaration_fails(stack: Stack, tmp_path):
    doc = yaml.safe_load((REPO / "prefect.yaml").read_text())
    doc.pop("definitions")
    for entry in doc["deployments"]:
        entry.pop("work_pool")
    stripped = tmp_path / "prefect.yaml"
    stripped.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = stack.cli("deploy", "--all", "--prefect-file", str(stripped))
    assert result.returncode != 0
    assert "work pool" in (result.stdout + result.stderr).lower()


def _wait_state(stack: Stack, run_id: str, wanted: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    run = stack.get(f"/flow_runs/{run_id}")
    while run["state_type"] not in wanted and time.monotonic() < deadline:
        assert run["state_type"] not in {"FAILED", "CRASHED", "CANCELLED"}, (run["state"], stack.log_tail())
        time.sleep(0.5)
        run = stack.get(f"/flow_runs/{run_id}")
    assert run["state_type"] in wanted, f"{run['state_type']} after {RUN_TIMEOUT_S} s\n{stack.log_tail()}"
    return run


def test_the_worker_runs_a_rotation_whose_approval_is_resumed_through_the_rest_api(stack: Stack, registered):
    from core.keyring import load_keyring
    from core.layout import DataLayout
    from flows.forms import PhaseChoice

    new_kid = _rotation_ready_data_dir(stack.data_dir)
    deployment = registered["rotate-signing-key"]
    run = stack.post(
        f"/deployments/{deployment['id']}/create_flow_run",
        {"parameters": {"phase": PhaseChoice.SIGN_SWITCH.value, "approval_timeout_seconds": 600}},
    )
    paused = _wait_state(stack, run["id"], {"PAUSED"})
    assert paused["work_pool_name"] == POOL and paused["name"].startswith("rotate-phase-2-sign-switch-")

    # an answer the approval form does not accept is refused by the server; the run stays paused
    refused = stack.post(f"/flow_runs/{run['id']}/resume", {"run_input": {"decision": "approve"}})
    assert refused["status"] == "REJECT" and "approver" in refused["details"]["reason"]
    assert stack.get(f"/flow_runs/{run['id']}")["state_type"] == "PAUSED"

    answer = {"decision": "approve", "approver": "alice", "comment": "change 4711"}
    accepted = stack.post(f"/flow_runs/{run['id']}/resume", {"run_input": answer})
    assert accepted["status"] == "ACCEPT", accepted
    done = _wait_state(stack, run["id"], {"COMPLETED"})
    assert done["state_type"] == "COMPLETED"
    keyring = load_keyring(DataLayout(stack.data_dir).keyring)
    assert keyring.default_signing_kid == new_kid
    assert (keyring.history[-1].action, keyring.history[-1].actor) == ("sign-switch", "alice")
