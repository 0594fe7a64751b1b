"""Real servers for end-to-end tests: free loopback ports, the API under uvicorn or `cap serve`, readiness.

One place for what the smoke, fuzz, serve and zero-downtime tests all need, so each test says only what
it checks.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx

from tests.paths import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cap(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real `cap` entry point in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "deployments.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def uvicorn_command(port: int) -> list[str]:
    """The API alone, as one uvicorn process on 127.0.0.1:``port``."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "deployments.api.app:app_from_env",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


def cap_serve_command(port: int, workers: int = 1) -> list[str]:
    """`cap serve` without Prefect on 127.0.0.1:``port``."""
    return [
        sys.executable,
        "-m",
        "deployments.cli",
        "serve",
        "--no-prefect",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


@contextlib.contextmanager
def serving(command: list[str], env: dict[str, str], port: int) -> Iterator[str]:
    """Run a server ``command`` until it answers ``/healthz`` on ``port``; yields its URL, stops it after."""
    proc = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def prepare_data_dir(env: dict[str, str]) -> None:
    """Signing key, keyring, registry, policy store and dev issuer, as `cap serve` has on a fresh machine."""
    from core import service
    from core.dev_issuer import DevIssuer
    from core.policy_store import PolicyStore
    from core.registry import Registry
    from core.settings import Settings
    from tests.world import World

    settings = Settings.from_env(env)
    settings.layout.root.mkdir(parents=True, exist_ok=True)
    service.keygen(settings, now=datetime.now(UTC))
    service.install_lists(
        settings, World().lists_file, datetime.now(UTC)
    )  # what canary proofs screen against
    Registry(settings.layout.registry_db).close()
    PolicyStore(settings.layout.policy_db).close()
    DevIssuer.for_settings(settings).ensure()


def dev_token(env: dict[str, str], scopes: list[str]) -> str:
    from core.dev_issuer import DevIssuer
    from core.settings import Settings

    issuer = DevIssuer.for_settings(Settings.from_env(env)).ensure()
    return issuer.mint(scopes, ttl=3600, now=int(time.time()))


def wait_for(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until ``url``/healthz answers; fails with the server's stderr if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
            )
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"server at {url} did not answer within {timeout} s")


class MotoS3:
    """moto's S3 server on a fixed loopback port that can be stopped and started again, an endpoint going
    down and coming back: its buckets and objects stay (moto keeps them in this process)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: object | None = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self.server = server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()  # type: ignore[attr-defined]
            self.server = None


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """moto's S3 server over HTTP on a free loopback port (what boto3 and Litestream talk to); its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def clear_pending_flow_runs() -> int:
    """Delete every flow run on the current Prefect API that has not started (SCHEDULED, PENDING).

    The session's Prefect harness is shared by the tests of the ``prefect`` xdist group: runs one test creates
    but never runs (the fuzz triggers admin flows on an API without a runner) would otherwise be picked up by
    the next test's runner serving the same deployments, and do their work in that test's data dir.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    waiting = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING]))
    )
    deleted = 0
    with get_client(sync_client=True) as client:
        while runs := client.read_flow_runs(flow_run_filter=waiting, limit=200):
            for run in runs:
                client.delete_flow_run(run.id)
            deleted += len(runs)
    return deleted
