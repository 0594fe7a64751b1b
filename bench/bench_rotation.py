"""Rotation phases 0→3 with zero dwell (force), SPEC §7 target ≤ 5 s. Prints figures; asserts nothing.

Run: .venv/bin/python bench/bench_rotation.py [--repeat N] [--flow]

The service path is what ``cap keys rotate`` runs in-process. ``--flow`` also runs the four phases as
``rotate-signing-key`` flow runs on a temporary Prefect server (its start-up is reported separately).

``run(...)`` returns figures for ``python -m bench``: the service path without load, and 0→3 with zero dwell
while two clients stream ``POST /verify`` (proofs by the old and, once it exists, the new key) at a live
``cap serve --no-prefect`` over the same data directory. Failed verifications are judged exactly as in
``tests/integration/test_rotation_zero_downtime.py`` (whose helpers are reused): a request fails if its key
was acceptable in every keyring state that could have answered it and it was not verified.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import Figure, at_most, info
from core import service
from core.rotation import make_request
from core.settings import Settings


def _fresh(root: Path) -> Settings:
    settings = Settings(data_dir=root / "var")
    service.keygen(settings, now=datetime.now(UTC), owner="Bench GmbH")
    return settings


def service_path(root: Path) -> list[float]:
    """Seconds per phase 0..3, forced, on a fresh data directory."""
    settings = _fresh(root)
    times = []
    for phase in range(4):
        t0 = time.perf_counter()
        service.rotate_signing_key(
            settings, make_request(phase, force=True, actor="bench"), datetime.now(UTC)
        )
        times.append(time.perf_counter() - t0)
    return times


def flow_path(root: Path) -> tuple[float, list[float]]:
    """(server start + first run overhead, seconds per phase) through real flow runs."""
    os.environ["PREFECT_HOME"] = str(root / "prefect-home")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED", "false")  # as tests/conftest.py
    os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE", "200")
    os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL", "1")
    os.environ["CAP_DATA_DIR"] = str(root / "flow" / "var")
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.rotation import rotate_signing_key

    _fresh(root / "flow")
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        t0 = time.perf_counter()
        rotate_signing_key(phase=0, dry_run=True)  # starts the temporary server
        warm = time.perf_counter() - t0
        times = []
        for phase in range(4):
            t0 = time.perf_counter()
            rotate_signing_key(phase=phase, force=True)
            times.append(time.perf_counter() - t0)
    return warm, times


def under_load(root: Path, workers: int = 2, clients: int = 2, settle: float = 1.0) -> dict[str, float]:
    """Rotate 0→3 (forced, zero dwell) in-process while ``clients`` threads verify over HTTP."""
    from bench.verify_http import start_server, stop_server
    from core.keys import KeyStore
    from tests.integration.test_rotation_zero_downtime import ACCEPTABLE, _proof_by, _states_in_force, _stream
    from tests.integration.test_smoke import dev_token, prepare_data_dir

    env = {**os.environ, "CAP_ENV": "dev", "CAP_DATA_DIR": str(root / "var")}
    prepare_data_dir(env)
    settings = Settings.from_env(env)
    store = KeyStore(settings.layout)
    (old,) = store.list()
    proofs = {"old": _proof_by(settings, old.kid)}
    proc, url = start_server(settings, workers)
    samples: list = []
    timeline: list[tuple[float, float]] = []
    stop = threading.Event()
    token = dev_token(env, ["verify:run"])
    threads = [
        threading.Thread(target=_stream, args=(url, token, proofs, stop, samples)) for _ in range(clients)
    ]
    try:
        for thread in threads:
            thread.start()
        time.sleep(settle)
        t0 = time.perf_counter()
        for phase in range(4):
            begin = time.monotonic()
            service.rotate_signing_key(
                settings, make_request(phase, force=True, actor="bench"), datetime.now(UTC)
            )
            timeline.append((begin, time.monotonic()))
            if phase == 0:
                new = next(k for k in store.list() if k.kid != old.kid)
                proofs["new"] = _proof_by(settings, new.kid)
        total = time.perf_counter() - t0
        time.sleep(settle)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        stop_server(proc)
    judged = [s for s in samples if all(s.key in ACCEPTABLE[i] for i in _states_in_force(s, timeline))]
    failures = [s for s in judged if not s.ok]
    return {"total_s": total, "requests": len(samples), "judged": len(judged), "failures": len(failures)}


def run(repeat: int = 5, load: bool = True) -> list[Figure]:
    """``rotation_0to3_s`` (service path, median of ``repeat``; ≤ 5 s) and ``rotation_verify_errors`` (0)."""
    with tempfile.TemporaryDirectory() as tmp:
        totals = [sum(service_path(Path(tmp) / f"s{i}")) for i in range(repeat)]
        figures = [
            at_most(
                "rotation_0to3_s",
                statistics.median(totals),
                "s",
                5,
                f"forced, zero dwell, median of {repeat}",
            )
        ]
        if load:
            m = under_load(Path(tmp) / "load")
            figures += [
                info("rotation_0to3_under_load_s", m["total_s"], "s", "while 2 clients verify over HTTP"),
                at_most(
                    "rotation_verify_errors",
                    m["failures"],
                    "requests",
                    0,
                    f"{m['requests']} verifications during the run, {m['judged']} judged",
                ),
            ]
    return figures


def _line(label: str, times: list[float]) -> str:
    per = " ".join(f"p{i}={t * 1000:.1f}ms" for i, t in enumerate(times))
    return f"{label}: total {sum(times):.3f} s ({per})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--flow", action="store_true", help="also time real flow runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [service_path(Path(tmp) / f"s{i}") for i in range(args.repeat)]
        totals = [sum(r) for r in runs]
        print(
            f"service path, phases 0-3 forced, {args.repeat} runs: median {statistics.median(totals):.3f} s, "
            f"min {min(totals):.3f} s, max {max(totals):.3f} s (target <= 5 s)"
        )
        print(_line("  median run", runs[totals.index(statistics.median_low(totals))]))
        if args.flow:
            warm, times = flow_path(Path(tmp))
            print(f"flow path: server start + first (dry-run) flow {warm:.1f} s")
            print(_line("flow path, 4 flow runs", times))


if __name__ == "__main__":
    main()
