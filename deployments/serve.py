"""``cap serve``: a small supervisor of child processes — Prefect server, one runner, the API workers.

With ``CAP_REPLICA_URL`` (and ``CAP_REPLICA_URL_2``) set, first a signed snapshot of the keyring, key
metadata and lists is written to ``state.sqlite`` (then one per change, :class:`StateSnapshotter`), and
``litestream replicate`` ships the registry, policy store and state snapshots to each replica
(:mod:`core.backup.replica`; stopped last, after its final sync).
Then: (1) unless ``PREFECT_API_URL`` is set (or ``--no-prefect``), start ``prefect server start`` on SQLite
under ``var/prefect`` and wait for ``/api/health``; (2) the runner serving the project's deployments
(:mod:`deployments.runner`); (3) uvicorn with N workers on the API factory, wait for ``/healthz``. Every child
gets ``PREFECT_API_URL`` so no process starts a temporary Prefect server. Each child runs in its own process
group; the supervisor alone owns SIGINT/SIGTERM and stops the groups in reverse order (API, runner — in-flight
runs end Cancelled —, Prefect server last), escalating to SIGKILL after a grace period. If any child dies, the
supervisor says which, stops the others and exits non-zero: nothing is restarted silently.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from core.backup.replica import (
    REPLICA_ENVS,
    litestream_config,
    litestream_env,
    parse_replica_url,
    probe_path,
    probe_replica,
    replicate_argv,
    write_config,
    write_probe,
)
from core.backup.state_snapshots import StateSnapshots, state_db, state_fingerprint, take_snapshot
from core.errors import CapError
from core.generation import writing_state
from core.service import default_signer
from core.settings import Settings
from core.store import require_files

PREFECT_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false",
    "PREFECT_CLIENT_MAX_RETRIES": "1",
}
# The embedded Prefect server writes to one SQLite file: its recorders flush in batches (the defaults write
# every task-run event alone) and a writer waits 30 s for the lock, so a UI "Run" does not meet an HTTP 503
# ("database is locked") while a flow's events are persisted (4 concurrent flows measured 42 such 503s with
# the defaults, 13-15 with batching); PostgreSQL has none.
SQLITE_SERVER_ENV = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_READ_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "1",
    "PREFECT_SERVER_DATABASE_TIMEOUT": "30",
}
PROJECT_ROOT = Path(__file__).resolve().parents[1]
# how long a child may take to answer its health check (a loaded 2-core machine needs more than the default)
STARTUP_TIMEOUT_S = float(os.environ.get("CAP_SERVE_STARTUP_TIMEOUT_S", "90"))
GRACE_S = 15.0
POLL_S = 0.25


class ServeError(RuntimeError):
    """A child failed to start or died; the message names it."""


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    adapt_env: Callable[[dict[str, str]], dict[str, str]] | None = None

    def start(self, env: dict[str, str]) -> None:
        env = self.adapt_env(env) if self.adapt_env else env
        # own session: a terminal Ctrl-C reaches only the supervisor, which stops the groups in order
        self.proc = subprocess.Popen(self.argv, env=env, start_new_session=True)

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self, grace: float = GRACE_S) -> None:
        if self.proc is None:
            return
        _signal_group(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        _signal_group(self.proc.pid, signal.SIGKILL)  # stragglers left in the group (flow-run subprocesses)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    prefect: bool = True
    prefect_port: int = 4200
    project: Path = field(default_factory=lambda: project_dir(Path.cwd()))
    api: bool = True  # False: ``--replication-only`` (the one replicating process of a shared data volume)


def project_dir(cwd: Path) -> Path:
    """Where ``prefect.yaml`` and ``flows/`` live: the working directory if it has them, else the checkout."""
    return cwd if (cwd / "prefect.yaml").exists() else PROJECT_ROOT


class MetricsDir:
    """This server's ``PROMETHEUS_MULTIPROC_DIR``: ``<data>/run/metrics/<pid>``, owned through a held lock.

    Every child (API workers, the runner and its flow-run processes) writes its counters there, so
    ``/metrics`` sums them even after a flow run exits. Another ``cap serve`` on the same data dir gets its
    own directory and never touches this one; a directory whose owner died (its lock is free) is removed by
    the next server that starts, and this one is removed when this server stops.
    """

    LOCK = ".owner.lock"

    def __init__(self, settings: Settings) -> None:
        self.parent = (settings.data_dir / "run" / "metrics").resolve()
        self.path = self.parent / str(os.getpid())
        self._lock: int | None = None

    def open(self) -> Path:
        self.parent.mkdir(parents=True, exist_ok=True)
        self._remove_orphans()
        shutil.rmtree(self.path, ignore_errors=True)  # a dead server of our pid, before pid reuse
        self.path.mkdir()
        self._lock = os.open(self.path / self.LOCK, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        return self.path

    def close(self) -> None:
        if self._lock is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            os.close(self._lock)
            self._lock = None

    def _remove_orphans(self) -> None:
        for other in self.parent.iterdir():
            if other.is_dir() and _owner_gone(other / self.LOCK):
                shutil.rmtree(other, ignore_errors=True)


def _owner_gone(lock: Path) -> bool:
    """True when no live server holds ``lock`` (or it is missing: a directory from before locks)."""
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def child_env(settings: Settings, prefect_url: str | None, metrics_dir: Path | None = None) -> dict[str, str]:
    """The environment of every child; ``PROMETHEUS_MULTIPROC_DIR`` is this server's :class:`MetricsDir`."""
    env = {**os.environ, **PREFECT_ENV, "CAP_DATA_DIR": str(settings.data_dir.resolve())}
    env.setdefault("PREFECT_HOME", str((settings.data_dir / "prefect").resolve()))
    for name, value in SQLITE_SERVER_ENV.items():  # an operator's own setting wins
        env.setdefault(name, value)
    if prefect_url:
        env["PREFECT_API_URL"] = prefect_url
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if metrics_dir is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    return env


def replicators(settings: Settings, env: Mapping[str, str] | None = None) -> list[Child]:
    """One ``litestream replicate`` child per replica URL set (``CAP_REPLICA_URL``, and ``CAP_REPLICA_URL_2``
    for a second region): Litestream 0.5 ships a database to one replica, so each URL gets its own process,
    config and state dir under ``<data>/run``."""
    env = os.environ if env is None else env
    if any(env.get(var) for var in REPLICA_ENVS):
        require_files(
            settings,
            "Litestream replication (CAP_REPLICA_URL) copies SQLite files, not the "
            "PostgreSQL state: replicate the database with PostgreSQL's own tools",
        )
    run = (settings.data_dir / "run").absolute()
    out = []
    for n, var in enumerate(REPLICA_ENVS, start=1):
        if not env.get(var):
            continue
        name = "litestream" if n == 1 else f"litestream-{n}"
        config = litestream_config(settings.layout, parse_replica_url(env[var]), run / name, env)
        argv = replicate_argv(write_config(run / f"{name}.yml", config), env)
        out.append(Child(name, argv, adapt_env=litestream_env))
    return out


def children(options: ServeOptions, start_server: bool, settings: Settings | None = None) -> list[Child]:
    py = sys.executable
    out = []
    out.extend(replicators(settings) if settings is not None else [])
    if start_server:
        out.append(
            Child(
                "prefect-server",
                [
                    py,
                    "-m",
                    "prefect",
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(options.prefect_port),
                ],
            )
        )
    if options.prefect:
        out.append(Child("prefect-runner", [py, "-m", "deployments.runner", str(options.project)]))
    if not options.api:
        return out
    out.append(
        Child(
            "api",
            [
                py,
                "-m",
                "uvicorn",
                "deployments.api.app:app_from_env",
                "--factory",
                "--host",
                options.host,
                "--port",
                str(options.port),
                "--workers",
                str(options.workers),
                "--no-access-log",
                "--log-level",
                "warning",
                "--timeout-graceful-shutdown",
                "5",
            ],
        )
    )
    return out


def wait_http(
    url: str, child: Child, cancelled: Callable[[], bool], timeout: float = STARTUP_TIMEOUT_S
) -> None:
    """Poll ``url`` until it answers 2xx or ``cancelled()``. Raises :class:`ServeError` if ``child`` dies or
    time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not cancelled():
        if child.exited() is not None:
            raise ServeError(f"{child.name} exited with code {child.exited()} during startup")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).is_success:
                return
        time.sleep(POLL_S)
    if not cancelled():
        raise ServeError(f"{child.name} did not answer {url} within {timeout:.0f} s")


PROBE_S = float(os.environ.get("CAP_REPLICA_PROBE_INTERVAL_S", "15"))


class ReplicaProber:
    """Every ``interval`` s, compares each replica with what its Litestream captured locally and records the
    result in ``<data>/replica-probes/litestream*.probe.json`` for the ``cap_replica_lag_seconds``
    gauge. A replica it cannot reach keeps its previous probe, so the lag keeps growing."""

    def __init__(self, settings: Settings, replicas: list[Child], interval: float = PROBE_S) -> None:
        self.layout, self.interval = settings.layout, interval
        self.configs = [Path(child.argv[3]) for child in replicas]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="replica-prober", daemon=True)

    def probe_once(self) -> None:
        env = litestream_env()
        for config in self.configs:
            with contextlib.suppress(CapError):
                probe = probe_replica(self.layout, config, config.with_suffix(""), time.time(), env)
                write_probe(probe_path(self.layout, config), probe)

    def _loop(self) -> None:
        self.probe_once()
        while not self.stop.wait(self.interval):
            self.probe_once()


SNAPSHOT_S = float(os.environ.get("CAP_STATE_SNAPSHOT_INTERVAL_S", "1"))


class StateSnapshotter:
    """Keeps ``state.sqlite`` holding a signed snapshot of the keyring, key metadata and lists as they are:
    one at start, then one per change (sizes, times and inodes compared every ``interval`` s; a change
    of bytes only then). A failed snapshot (no signer yet, a restore running, private key material) is
    said once and retried on the next change check."""

    def __init__(self, settings: Settings, say: Callable[[str], None], interval: float = SNAPSHOT_S) -> None:
        self.settings, self.say, self.interval = settings, say, interval
        self.seen: object = None
        self.problem: str | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="state-snapshots", daemon=True)

    def snapshot_once(self) -> int | None:
        layout = self.settings.layout
        seen = state_fingerprint(layout)
        if seen == self.seen:
            return None
        try:
            StateSnapshots(state_db(layout)).close()  # exists before Litestream starts watching it
            with writing_state(layout.root):
                taken = take_snapshot(layout, default_signer(self.settings), datetime.now(UTC))
        except (CapError, OSError) as exc:
            if str(exc) != self.problem:
                self.say(f"warning: state snapshot not taken: {exc}")
            self.problem = str(exc)
            return None
        self.seen, self.problem = seen, None
        return taken

    def _loop(self) -> None:
        while not self.stop.wait(self.interval):
            self.snapshot_once()


class Supervisor:
    """Starts the children in order, watches them, stops them in reverse order; ``run`` returns the code."""

    def __init__(self, settings: Settings, options: ServeOptions, say: Callable[[str], None]) -> None:
        self.settings, self.options, self.say = settings, options, say
        self.stopping = False
        attach = os.environ.get("PREFECT_API_URL")
        self.start_server = options.prefect and not attach
        url = attach or (f"http://127.0.0.1:{options.prefect_port}/api" if options.prefect else None)
        self.prefect_url = url
        self.children = children(options, self.start_server, settings)
        self.metrics_dir = MetricsDir(settings)
        replicas = [c for c in self.children if c.name.startswith("litestream")]
        self.prober = ReplicaProber(settings, replicas) if replicas else None
        self.snapshots = StateSnapshotter(settings, say) if replicas else None

    def run(self) -> int:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            if self.snapshots is not None:  # the first snapshot is in state.sqlite before Litestream starts
                self.snapshots.snapshot_once()
                self.snapshots.thread.start()
            self._start_all()
            if self.prober is not None:
                self.prober.thread.start()
            return self._watch()
        except ServeError as exc:
            self.say(f"error: {exc}")
            return 1
        finally:
            if self.prober is not None:
                self.prober.stop.set()
            if self.snapshots is not None:
                self.snapshots.stop.set()
            self._stop_all()
            self.metrics_dir.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def _start_all(self) -> None:
        env = child_env(self.settings, self.prefect_url, self.metrics_dir.open())
        for child in self.children:
            if self.stopping:
                return
            child.start(env)
            self._await(child)

    def _await(self, child: Child) -> None:
        if child.name == "prefect-server":
            wait_http(f"{self.prefect_url}/health", child, lambda: self.stopping)
            self.say(
                f"prefect server ready: {self.prefect_url} (UI http://127.0.0.1:{self.options.prefect_port})"
            )
        elif child.name.startswith("litestream"):
            self.say(f"replicating registry, policy store, state snapshots ({child.name}, {child.argv[3]})")
        elif child.name == "api":
            wait_http(f"http://{self.options.host}:{self.options.port}/healthz", child, lambda: self.stopping)
            self.say(
                f"API ready: http://{self.options.host}:{self.options.port} ({self.options.workers} workers)"
            )

    def _watch(self) -> int:
        while not self.stopping:
            for child in self.children:
                code = child.exited()
                if code is not None:
                    self.say(f"error: {child.name} exited unexpectedly with code {code}; stopping everything")
                    return 1
            time.sleep(POLL_S)
        self.say("stopping: " + ", ".join(c.name for c in reversed(self.children)))
        return 0

    def _stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()
