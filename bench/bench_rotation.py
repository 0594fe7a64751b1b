"""Rotation phases 0→3 with zero dwell (force), SPEC §7 target ≤ 5 s. Prints figures; asserts nothing.

Run: .venv/bin/python bench/bench_rotation.py [--repeat N] [--flow]

The service path is what ``cap keys rotate`` runs in-process. ``--flow`` also runs the four phases as
``rotate-signing-key`` flow runs on a temporary Prefect server (its start-up is reported separately).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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
