"""The trusted state on PostgreSQL (issue 19, ADR 0013): concurrent writers, ``POST /verify`` beside SQLite.

    .venv/bin/python bench/bench_pg.py [--seconds 10] [--verify-seconds 10] [--rounds 2]

A throwaway PostgreSQL cluster on a loopback port (``tests/pgserver.py``), switched back to durable commits
(``fsync``, ``synchronous_commit`` and ``full_page_writes`` on, as in production; the test cluster has them
off). Then:

- **registry appends**: 2 writer processes register signed entries as fast as they can for ``--seconds``;
  each records the ids it got acknowledged. Total entries/s over the shared wall time (target >= 1,000),
  lost = acknowledged ids missing from the database, repeated ids, and every entry's signature checked.
- **audit appends**: the same with 2 processes appending to the one audit chain; the chain is verified end
  to end and its length compared with the acknowledged appends.
- **POST /verify**: :func:`bench.verify_http.measure` (``cap serve --no-prefect``, 2 workers, a registry hit
  per request) with the registry on SQLite and on PostgreSQL, rounds alternating; the PostgreSQL median as a
  share of SQLite's (target >= 80 %).

Figures are printed beside their targets, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import Figure, at_least, at_most, format_table, info, median  # noqa: E402
from core.registry import verify_entry  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.store import audit_log, open_registry  # noqa: E402
from core.store.postgres.db import close_all  # noqa: E402

WRITER = """
import json, sys, time
from datetime import UTC, datetime
from core.settings import Settings
from core.signing import Ed25519Signer
from core.store import audit_log, open_registry
what, worker, start, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
settings = Settings.from_env()
signer = Ed25519Signer.from_seed(bytes([int(worker)]) * 32)
registry, log = open_registry(settings), audit_log(settings)
acked = []
while time.time() < start:
    time.sleep(0.001)
end, n = start + seconds, 0
while time.time() < end:
    if what == "registry":
        entry = registry.register(
            json.dumps({"worker": worker, "n": n}).encode(), b"{}", subject="LEI-BENCH", policy_hash="p",
            ir_hash="i", company_root="c", supplier_root="s", ubo_root="u", result="OK", accepted=True,
            signer=signer, now=datetime.now(UTC),
        )
        acked.append(entry.id)
    else:
        acked.append(log.append("bench", {"worker": worker, "n": n}, datetime.now(UTC)).digest)
    n += 1
print(json.dumps({"acked": acked, "finished": time.time()}))
"""


def durable(server: object) -> None:
    """Restart the throwaway cluster with production durability (the test options switch it off)."""
    import psycopg

    from tests.pgserver import bindir

    options = (
        f"-c listen_addresses=127.0.0.1 -p {server.port} -k {server.root} "  # type: ignore[attr-defined]
        "-c max_connections=100 -c shared_buffers=128MB"
    )
    pg_ctl = [str(bindir() / "pg_ctl"), "-D", str(server.data), "-o", options, "-l", str(server.root / "log")]  # type: ignore[attr-defined]
    pg_ctl += ["-w", "-m", "fast", "restart"]
    subprocess.run(server._command(*pg_ctl), check=True, capture_output=True)  # type: ignore[attr-defined]
    with psycopg.connect(server.url(), autocommit=True) as conn:  # type: ignore[attr-defined]
        shown = [conn.execute(f"SHOW {name}").fetchone() for name in ("fsync", "synchronous_commit")]
    assert shown == [("on",), ("on",)], shown


def two_writers(url: str, what: str, seconds: float) -> tuple[list[str], float]:
    """Acknowledged results of 2 writer processes and the shared wall time (start barrier → last finish)."""
    env = {**os.environ, "CAP_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    start = time.time() + 3.0  # both processes imported and connected before the clock starts
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, what, str(w), str(start), str(seconds)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for w in (1, 2)
    ]
    results = [json.loads(p.communicate(timeout=seconds + 120)[0]) for p in procs]
    acked = [a for r in results for a in r["acked"]]
    return acked, max(r["finished"] for r in results) - start


def registry_figures(url: str, seconds: float) -> list[Figure]:
    acked, wall = two_writers(url, "registry", seconds)
    settings = Settings(database_url=url)
    entries = open_registry(settings).entries()
    stored = [e.id for e in entries]
    lost = len(set(acked) - set(stored))
    repeated = len(stored) - len(set(stored))
    bad = sum(not verify_entry(e) for e in entries)
    note = f"2 processes, {len(acked)} entries in {wall:.1f} s, durable commits"
    return [
        at_least("pg_registry_appends_per_s", len(acked) / wall, "entries/s", 1000, note),
        at_most("pg_registry_lost", lost, "entries", 0, "acknowledged but not stored"),
        at_most("pg_registry_repeated_ids", repeated + len(acked) - len(set(acked)), "ids", 0),
        at_most("pg_registry_invalid_entries", bad, "entries", 0, f"signatures of all {len(stored)} checked"),
    ]


def audit_figures(url: str, seconds: float) -> list[Figure]:
    acked, wall = two_writers(url, "audit", seconds)
    report = audit_log(Settings(database_url=url)).verify()
    note = f"2 processes, {len(acked)} events in {wall:.1f} s; chain {'valid' if report.ok else 'BROKEN'}"
    return [
        info("pg_audit_appends_per_s", len(acked) / wall, "events/s", note),
        at_most(
            "pg_audit_chain_breaks", 0 if report.ok else 1, "breaks", 0, f"{report.total} events verified"
        ),
        at_most("pg_audit_lost", len(acked) - report.total, "events", 0, "acknowledged but not in the chain"),
    ]


def verify_figures(server: object, seconds: float, rounds: int) -> list[Figure]:
    from bench.verify_http import measure

    sqlite, pg = [], []
    for _ in range(rounds):
        sqlite.append(measure(2, seconds, 2.0, 16, "auto", 0)["rps"])
        url = server.create_database("verify")  # type: ignore[attr-defined]
        try:
            pg.append(measure(2, seconds, 2.0, 16, "auto", 0, database_url=url)["rps"])
        finally:
            close_all()
            server.drop_database(url)  # type: ignore[attr-defined]
    ratio = median(pg) / median(sqlite)
    return [
        info("verify_http_rps_sqlite", median(sqlite), "req/s", f"median of {rounds}: {sqlite}"),
        info("verify_http_rps_pg", median(pg), "req/s", f"median of {rounds}: {pg}"),
        at_least("verify_http_pg_vs_sqlite_pct", 100 * ratio, "%", 80, "registry on PostgreSQL / on SQLite"),
    ]


def run(
    seconds: float = 10.0, verify_seconds: float = 10.0, rounds: int = 2, *, fsync: bool = True
) -> list[Figure]:
    from tests.pgserver import postgres_server

    with postgres_server() as server:
        if fsync:
            durable(server)
        figures: list[Figure] = []
        for measure_one in (registry_figures, audit_figures):
            url = server.create_database("bench")
            try:
                figures += measure_one(url, seconds)
            finally:
                close_all()
                server.drop_database(url)
        if rounds:
            figures += verify_figures(server, verify_seconds, rounds)
    return figures


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--verify-seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2, help="POST /verify rounds per engine (0: none)")
    ap.add_argument("--no-fsync", action="store_true", help="keep the test cluster's fsync=off (diagnosis)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory():
        print(format_table(run(args.seconds, args.verify_seconds, args.rounds, fsync=not args.no_fsync)))
    print(f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
