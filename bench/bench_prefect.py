"""Prefect flow overhead per run: a trivial flow called as a flow run vs its ``.fn()``. Prints figures only.

Runs under a temporary local Prefect server (``prefect_test_harness``, SQLite, as the test suite uses) with
``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` = None (SPEC §1: otherwise sync flows wait ~1 s for the heartbeat).
Why hot paths never go through a flow run: this is the cost that would be added per request.

Run: .venv/bin/python bench/bench_prefect.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import Figure, info


def _hermetic_env(home: Path) -> None:
    for var in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE"):
        os.environ.pop(var, None)
    os.environ["PREFECT_HOME"] = str(home)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED", "false")


def measure(runs: int = 10) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="cap-bench-prefect-") as tmp:
        _hermetic_env(Path(tmp))
        from prefect import flow
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
        from prefect.testing.utilities import prefect_test_harness

        @flow(name="bench-noop", log_prints=False)
        def noop(x: int) -> int:
            return x + 1

        fn_times = []
        for i in range(1000):
            t0 = time.perf_counter()
            noop.fn(i)
            fn_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with (
            prefect_test_harness(server_startup_timeout=120),
            temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        ):
            startup = time.perf_counter() - t0
            t0 = time.perf_counter()
            noop(0)
            first = time.perf_counter() - t0
            times = []
            for i in range(runs):
                t0 = time.perf_counter()
                noop(i)
                times.append(time.perf_counter() - t0)
    fn = statistics.median(fn_times)
    return {
        "startup_s": startup,
        "first_s": first,
        "run_median_s": statistics.median(times),
        "run_max_s": max(times),
        "fn_s": fn,
        "overhead_s": statistics.median(times) - fn,
    }


def run(runs: int = 10) -> list[Figure]:
    """``prefect_flow_overhead_s``: median flow-run time minus ``.fn()`` time (no SPEC target)."""
    m = measure(runs)
    return [
        info(
            "prefect_flow_overhead_s",
            m["overhead_s"],
            "s",
            f"trivial flow, median of {runs} runs, minus .fn()",
        ),
        info("prefect_flow_run_max_s", m["run_max_s"], "s", f"slowest of {runs}"),
        info("prefect_server_startup_s", m["startup_s"], "s", "temporary local server (test harness)"),
        info("prefect_first_run_s", m["first_s"], "s", "first flow run after start"),
        info("prefect_fn_us", m["fn_s"] * 1e6, "us", ".fn() call"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    m = measure(args.runs)
    print(f"temporary server start {m['startup_s']:.1f} s, first flow run {m['first_s']:.2f} s")
    print(
        f"trivial flow run: median {m['run_median_s'] * 1000:.0f} ms, max {m['run_max_s'] * 1000:.0f} ms; "
        f".fn() {m['fn_s'] * 1e6:.1f} us -> overhead {m['overhead_s'] * 1000:.0f} ms per run"
    )


if __name__ == "__main__":
    main()
