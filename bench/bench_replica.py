"""Achieved RPO of the Litestream replica under a steady write load, with the replicator killed by SIGKILL.

    .venv/bin/python bench/bench_replica.py [--rounds 5] [--seconds 10] [--rate 50]

Each round: a fresh data dir (real key and registry), ``litestream replicate`` exactly as ``cap serve`` runs
it (:func:`deployments.serve.replicators`, file replica, the default 1 s sync interval), a writer registering
``rate`` entries per second and recording when each was acknowledged (committed), SIGKILL to Litestream at a
random moment, the writer stopped, then ``litestream restore`` to latest. The round's lost window is the kill
time minus the acknowledgement time of the oldest acknowledged write missing from the restore (0 when none is
missing): the data a host lost at that instant would lose. Reports p50/p99/max over the rounds (issue #20
target: p99 <= 60 s) and the restore time of the registry; then ``litestream restore`` of a ~1 GB
registry (``--rto-mb``) from a ``file://`` replica, beside ``restore_1gb_s`` of the archive restore.
"""

from __future__ import annotations

import argparse
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import Figure, at_most, info, median, percentile
from core import service
from core.backup.replica import litestream_env, replicated_databases, restore_db
from core.registry import Registry
from core.settings import Settings
from deployments.serve import replicators
from tests.registry_fill import register_filler

NOW = datetime(2026, 12, 6, tzinfo=UTC)


def _writer(settings: Settings, rate: float, stop: threading.Event, acked: list[tuple[str, float]]) -> None:
    signer = service.default_signer(settings)
    with Registry(settings.layout.registry_db) as registry:
        n = 0
        while not stop.is_set():
            entry_id = register_filler(registry, settings, n, subject="LEI-BENCH", now=NOW, signer=signer)
            acked.append((entry_id, time.time()))
            n += 1
            time.sleep(1 / rate)


def one_round(work: Path, seconds: float, rate: float) -> tuple[float, int, float]:
    """(lost window s, missing acknowledged writes, restore s) of one SIGKILL round."""
    settings = Settings(data_dir=work / "var")
    service.keygen(settings, now=NOW, owner="Bench GmbH")
    Registry(settings.layout.registry_db).close()
    (child,) = replicators(settings, {"CAP_REPLICA_URL": (work / "replica").as_uri()})
    child.start({})
    acked: list[tuple[str, float]] = []
    stop = threading.Event()
    writer = threading.Thread(target=_writer, args=(settings, rate, stop, acked))
    time.sleep(1.5)  # Litestream's first snapshot
    writer.start()
    time.sleep(random.uniform(seconds / 2, seconds))
    killed_at = time.time()
    child.proc.send_signal(signal.SIGKILL)
    child.proc.wait()
    time.sleep(0.5)
    stop.set()
    writer.join()
    config = Path(child.argv[3])
    db = next(d for d in replicated_databases(settings.layout) if d.name == "registry")
    start = time.perf_counter()
    restore_db(config, db, work / "restored.sqlite", None)
    restore_s = time.perf_counter() - start
    conn = sqlite3.connect(work / "restored.sqlite")
    have = {r[0] for r in conn.execute("SELECT id FROM registry_entries")}
    conn.close()
    missing = [at for entry_id, at in acked if at <= killed_at and entry_id not in have]
    return (killed_at - min(missing) if missing else 0.0), len(missing), restore_s


def measure_rto(size_mb: int) -> tuple[float, float]:
    """(MB, s) of ``litestream restore`` to latest of a ~``size_mb`` MB registry from a ``file://`` replica
    written by ``litestream replicate -once`` (step 1 of a point-in-time restore; integrity check apart)."""
    with tempfile.TemporaryDirectory(prefix="cap-bench-replica-rto-") as tmp:
        root = Path(tmp)
        build = [sys.executable, bench_backup_path(), "--build-only", str(root / "var"), str(size_mb)]
        subprocess.run(build, check=True)
        settings = Settings(data_dir=root / "var")
        (child,) = replicators(settings, {"CAP_REPLICA_URL": (root / "replica").as_uri()})
        subprocess.run([*child.argv, "-once"], check=True, capture_output=True, env=litestream_env())
        db = next(d for d in replicated_databases(settings.layout) if d.name == "registry")
        mb = db.path.stat().st_size / 2**20
        start = time.perf_counter()
        restore_db(Path(child.argv[3]), db, root / "restored.sqlite", None)
        return mb, time.perf_counter() - start


def bench_backup_path() -> str:
    return str(Path(__file__).with_name("bench_backup.py"))


def run(rounds: int = 5, seconds: float = 10.0, rate: float = 50.0, rto_mb: int = 1024) -> list[Figure]:
    windows, missing, restores = [], [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="cap-bench-replica-") as tmp:
            lost, count, restore_s = one_round(Path(tmp), seconds, rate)
        windows.append(lost)
        missing.append(count)
        restores.append(restore_s)
    note = f"{rounds} SIGKILL rounds, {rate:g} writes/s, sync interval 1 s (default)"
    mb, rto = measure_rto(rto_mb)
    return [
        info(
            "replica_restore_1gb_s", rto, "s", f"litestream restore of {mb:.0f} MB from file:// (step 1 only)"
        ),
        at_most("replica_rpo_p99_s", percentile(windows, 0.99), "s", 60, note),
        info(
            "replica_rpo_p50_s",
            median(windows),
            "s",
            "lost windows: " + ", ".join(f"{w:.2f}" for w in windows),
        ),
        info(
            "replica_lost_writes_max",
            float(max(missing)),
            "writes",
            "acknowledged before the kill, not restored",
        ),
        info(
            "replica_restore_registry_s",
            median(restores),
            "s",
            f"litestream restore to latest, ~{seconds * rate:.0f} entries",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--rto-mb", type=int, default=1024)
    args = parser.parse_args()
    for figure in run(args.rounds, args.seconds, args.rate, args.rto_mb):
        print(figure)


if __name__ == "__main__":
    main()
