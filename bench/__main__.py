"""``python -m bench`` (``make bench``): every suite, a table of figures beside the SPEC §7 targets, and
``bench/results.json`` (a list of ``{name, value, unit, target, ok, note, suite, measured_at}``).

    python -m bench                 # documented sizes (1 M rows, 1 GB state, 10 k suppliers), ≲ 15 minutes
    python -m bench --quick         # small sizes, about a minute
    python -m bench --only backup   # one suite (or the suite that produces a figure: --only drift_p95_ms)
    python -m bench --no-s3         # backup suite without the moto S3 server leg

``--only`` replaces that suite's rows in ``results.json`` and keeps the others, so the file always holds
one row set per suite, each stamped with when it was measured.

Each suite runs in its own subprocess, so peak-RSS figures and Prefect settings do not leak between them;
one suite failing is reported and the others still run. The 1-minute load average is recorded at the start
and end (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import Figure, format_table, info

RESULTS = Path(__file__).resolve().parent / "results.json"
ROOT = Path(__file__).resolve().parents[1]


def _verify_http(quick: bool, s3: bool) -> list[Figure]:
    from bench import verify_http

    return verify_http.run(
        workers=2, seconds=4 if quick else 15, concurrency=16, large=1_000 if quick else 10_000
    )


def _compile(quick: bool, s3: bool) -> list[Figure]:
    from bench import bench_compile

    return bench_compile.run(repeats=20 if quick else 200)


def _proof(quick: bool, s3: bool) -> list[Figure]:
    from bench import bench_proof

    return bench_proof.run(1_000, 5_000, 1) if quick else bench_proof.run(10_000, 50_000, 3)


def _enforce_drift(quick: bool, s3: bool) -> list[Figure]:
    from bench import bench_enforce_drift

    return bench_enforce_drift.run(10_000, 10_000, 100 if quick else 500)


def _commit(quick: bool, s3: bool) -> list[Figure]:
    from bench import bench_commit

    return bench_commit.run(100_000 if quick else 1_000_000)


def _backup(quick: bool, s3: bool) -> list[Figure]:
    from bench import bench_backup

    return bench_backup.run(64 if quick else 1024, s3=s3)


def _pg(quick: bool, s3: bool) -> list[Figure]:
    from bench import bench_pg

    return bench_pg.run(
        seconds=3 if quick else 10, verify_seconds=4 if quick else 10, rounds=1 if quick else 2
    )


def _pg_restore(quick: bool, s3: bool) -> list[Figure]:
    from bench import bench_pg_restore

    return bench_pg_restore.run(64 if quick else 1024)


def _replica(quick: bool, s3: bool) -> list[Figure]:
    from bench import bench_replica

    return bench_replica.run(
        rounds=2 if quick else 10, seconds=6.0 if quick else 12.0, rto_mb=64 if quick else 1024
    )


def _replica_pitr(quick: bool, s3: bool) -> list[Figure]:
    from bench import bench_replica

    return bench_replica.run_pitr(64 if quick else 1024, s3=s3)


def _replica_overhead(quick: bool, s3: bool) -> list[Figure]:
    from bench import bench_replica

    return bench_replica.run_overhead(rounds=1 if quick else 3, seconds=4.0 if quick else 10.0)


def _rotation(quick: bool, s3: bool) -> list[Figure]:
    from bench import bench_rotation

    return bench_rotation.run(repeat=2 if quick else 5)


def _screening(quick: bool, s3: bool) -> list[Figure]:
    from bench import bench_screening

    return bench_screening.run(10_000, 2_000) if quick else bench_screening.run()


def _sap(quick: bool, s3: bool) -> list[Figure]:
    from bench import bench_sap_ingest

    return bench_sap_ingest.run(2_000, 8_000) if quick else bench_sap_ingest.run()


def _zk(quick: bool, s3: bool) -> list[Figure]:
    from bench import bench_zk

    return bench_zk.run(quick)


def _prefect(quick: bool, s3: bool) -> list[Figure]:
    from bench import bench_prefect

    return bench_prefect.run(runs=5 if quick else 20)


def _hostile(quick: bool, s3: bool) -> list[Figure]:
    from bench import bench_hostile

    return bench_hostile.run()


def _cli(quick: bool, s3: bool) -> list[Figure]:
    from bench import bench_cli

    return bench_cli.run(repeat=3 if quick else 7)


Suite = Callable[[bool, bool], list[Figure]]
SUITES: dict[str, tuple[Suite, tuple[str, ...]]] = {
    "verify_http": (_verify_http, ("verify_http_rps", "verify_http_p99_ms", "verify_inprocess_rps")),
    "compile": (_compile, ("policy_compile_ms",)),
    "proof": (_proof, ("proof_build_10k_ms",)),
    "enforce_drift": (_enforce_drift, ("enforce_p95_ms", "drift_p95_ms")),
    "commit": (_commit, ("commit_1m_rows_s",)),
    "backup": (_backup, ("backup_1gb_s", "restore_1gb_s")),
    "pg": (_pg, ("pg_registry_appends_per_s", "verify_http_pg_vs_sqlite_pct")),
    "pg_restore": (_pg_restore, ("backup_pg_1gb_s", "restore_pg_1gb_s")),
    "replica": (_replica, ("replica_rpo_p99_s",)),
    "replica_pitr": (_replica_pitr, ("pitr_restore_1gb_s",)),
    "replica_overhead": (_replica_overhead, ("replica_verify_overhead_pct",)),
    "rotation": (_rotation, ("rotation_0to3_s", "rotation_verify_errors")),
    "screening": (_screening, ()),
    "sap": (_sap, ()),
    "prefect": (_prefect, ("prefect_flow_overhead_s",)),
    "zk": (_zk, ("zk_verify_10k_ms", "zk_proof_10k_kb")),
    "hostile": (
        _hostile,
        ("hostile_anon_28mib_verify_ms", "hostile_policy_60k_keys_ms", "hostile_swapped_archive_ms"),
    ),
    "cli": (_cli, ("cli_help_s", "cli_verify_small_s")),
}


def _select(only: str | None) -> list[str]:
    if only is None:
        return list(SUITES)
    if only in SUITES:
        return [only]
    for name, (_, produces) in SUITES.items():
        if only in produces or only.startswith(name):
            return [name]
    raise SystemExit(f"unknown suite or figure {only!r}; suites: {', '.join(SUITES)}")


def _run_suite(name: str, quick: bool, s3: bool) -> list[Figure]:
    """Run one suite in a subprocess; a failure becomes a ``<suite>_failed`` figure (ok False)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        path = Path(out.name)
    command = [sys.executable, "-m", "bench", "--suite", name, "--suite-out", str(path)]
    command += ["--quick"] * quick + ["--s3"] * s3
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=ROOT, timeout=1200, check=False)
        rows = json.loads(path.read_text()) if proc.returncode == 0 else None
    except subprocess.TimeoutExpired:
        rows = None
    finally:
        path.unlink(missing_ok=True)
    elapsed = time.perf_counter() - t0
    if rows is None:
        return [Figure(f"{name}_failed", 1, "suite", "0", False, "see stderr above")]
    return [Figure(**row) for row in rows] + [info(f"{name}_suite_wall_s", elapsed, "s", "whole suite")]


def main() -> None:
    parser = argparse.ArgumentParser(description="CAP Verifier benchmarks (SPEC §7)")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--only", help="one suite, or the suite producing this figure")
    parser.add_argument(
        "--s3",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="backup suite also through moto's S3 server on loopback (default on)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--suite", help=argparse.SUPPRESS)
    parser.add_argument("--suite-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.suite:  # child: one suite, figures as JSON
        figures = SUITES[args.suite][0](args.quick, args.s3)
        args.suite_out.write_text(json.dumps([f.as_json() for f in figures]))
        return
    figures: list[Figure] = []
    rows: list[dict[str, Any]] = []
    for name in _select(args.only):
        print(f"== {name}", file=sys.stderr, flush=True)
        start = info(f"{name}_loadavg_1m_start", os.getloadavg()[0], "", "the machine may be shared")
        suite = [start, *_run_suite(name, args.quick, args.s3)]
        suite.append(info(f"{name}_cpus", os.cpu_count() or 0, "cores"))
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        sizes = "quick sizes" if args.quick else "documented sizes"
        rows += [{**f.as_json(), "suite": name, "measured_at": stamp, "sizes": sizes} for f in suite]
        figures += suite
    print(format_table(figures))
    kept = [r for r in _previous(args.out) if args.only and r.get("suite") not in {r["suite"] for r in rows}]
    args.out.write_text(json.dumps(kept + rows, indent=1) + "\n")
    print(f"\nwrote {args.out} ({len(rows)} new rows, {len(kept)} kept from earlier runs of other suites)")


def _previous(path: Path) -> list[dict[str, Any]]:
    """Rows of an earlier results file that carry a suite tag; nothing when absent or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return (
        [r for r in data if isinstance(r, dict) and isinstance(r.get("suite"), str)]
        if isinstance(data, list)
        else []
    )


if __name__ == "__main__":
    main()
