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

``--pitr``: the RTO of a whole point-in-time restore (``--at`` a point, all eight steps, state snapshot
included, into a copy of the live state as ``restore_1gb_s`` does) of the ~1 GB state of
``bench_backup.py`` from a ``file://`` replica and from moto's S3 server over HTTP.

``--overhead``: ``POST /verify`` throughput of ``cap serve`` (the verify_http bench: registry on, a
registry hit per request) with replication off and on (``file://``, default intervals) while a writer
registers 20 entries/s, so Litestream ships changes during the load; rounds alternate off/on; the overhead
is 1 - median(on)/median(off) (issue #20 target: <= 10 %).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
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


def _moto(env: dict[str, str]) -> object:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env |= {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "CAP_S3_ENDPOINT_URL": f"http://{host}:{port}",
    }
    keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
    boto3.client(
        "s3", endpoint_url=env["CAP_S3_ENDPOINT_URL"], region_name="us-east-1", **keys
    ).create_bucket(Bucket="bench")
    return server


def measure_pitr(size_mb: int, s3: bool) -> dict[str, float | str]:
    """Seconds of a whole point-in-time restore of ~``size_mb`` MB (file, and S3 if ``s3``), its steps."""
    from bench.bench_backup import SIGNER
    from core.backup.manifest import parse_keyring
    from core.backup.pitr import run_replica_restore
    from core.backup.restore import RestoreOptions
    from core.backup.state_snapshots import take_snapshot

    out: dict[str, float | str] = {}
    with tempfile.TemporaryDirectory(prefix="cap-bench-pitr-") as tmp:
        root = Path(tmp)
        live = root / "var"
        subprocess.run(
            [sys.executable, bench_backup_path(), "--build-only", str(live), str(size_mb)], check=True
        )
        settings = Settings(data_dir=live)
        take_snapshot(settings.layout, SIGNER, NOW)
        out["mb"] = sum(p.stat().st_size for p in live.rglob("*") if p.is_file()) / 1e6
        trusted = parse_keyring(settings.layout.keyring.read_bytes()).keys
        legs: list[tuple[str, str, dict[str, str]]] = [("file", (root / "replica").as_uri(), {})]
        server = None
        if s3:
            env: dict[str, str] = {}
            server = _moto(env)
            legs.append(("s3", "s3://bench/prod", env))
        try:
            for name, url, extra in legs:
                env = {**os.environ, **extra}
                (child,) = replicators(settings, {**env, "CAP_REPLICA_URL": url})
                start = time.perf_counter()
                subprocess.run(
                    [*child.argv, "-once"], check=True, capture_output=True, env=litestream_env(env)
                )
                out[f"{name}_replicate_s"] = time.perf_counter() - start
                time.sleep(1.1)  # the point lies after the replicated second
                point = datetime.now(UTC)
                target = root / f"restored-{name}"
                shutil.copytree(live, target, symlinks=True)
                opts = RestoreOptions(trusted_keys=trusted)
                start = time.perf_counter()
                receipt = run_replica_restore(url, target, SIGNER, now=point, at=point, options=opts, env=env)
                out[f"{name}_s"] = time.perf_counter() - start
                out[f"{name}_steps"] = " ".join(f"{s.name.value}={s.duration_ms}ms" for s in receipt.steps)
                shutil.rmtree(target)
                for old in root.glob(f"restored-{name}.old-*"):
                    shutil.rmtree(old)
        finally:
            if server is not None:
                server.stop()  # type: ignore[attr-defined]
    return out


def _litestream_cpu() -> float:
    """CPU seconds of every running ``litestream`` process (this bench starts the only one)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "litestream":
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            continue
    return total


def _verify_round(replicate: bool, seconds: float, writes: float) -> tuple[float, float, float]:
    """(req/s, server CPU ms per request, Litestream's share of that CPU) of one verify_http load of
    ``seconds``, replication on or off, ``writes`` entries/s beside."""
    from bench import verify_http
    from core.dev_issuer import DevIssuer

    root = Path(tempfile.mkdtemp(prefix="cap-bench-overhead-"))
    try:
        settings, _world, body = verify_http.prepare(root)
        extra = {"CAP_REPLICA_URL": (root / "replica").as_uri()} if replicate else {}
        proc, url = verify_http.start_server(settings, 2, extra)
        stop = threading.Event()
        writer = threading.Thread(target=_writer, args=(settings, writes, stop, []))
        try:
            token = DevIssuer(settings.layout.dev_issuer_dir).mint(
                ["verify:run"], ttl=3600, now=int(time.time())
            )
            wrk = verify_http.wrk_binary()

            def load(duration: float) -> dict[str, float]:
                if wrk is not None:
                    return verify_http.drive_wrk(wrk, url, body, token, duration, 16)
                return verify_http.drive_httpx(url, body, token, duration, 16)

            writer.start()
            load(2.0)
            cpu0, lite0 = verify_http.server_cpu(proc.pid), _litestream_cpu()
            m = load(seconds)
            cpu = verify_http.server_cpu(proc.pid) - cpu0
            cpu_ms, share = cpu * 1000 / max(1, m["requests"]), (_litestream_cpu() - lite0) / max(cpu, 1e-9)
        finally:
            stop.set()
            if writer.is_alive():
                writer.join()
            verify_http.stop_server(proc)
        return m["requests"] / m["wall"], cpu_ms, share
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure_overhead(
    rounds: int, seconds: float, writes: float
) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]]:
    """(req/s, CPU ms/req, Litestream share) off and on, rounds alternating (a shared machine drifts)."""
    off, on = [], []
    for _ in range(rounds):
        off.append(_verify_round(False, seconds, writes))
        on.append(_verify_round(True, seconds, writes))
    return off, on


def run_pitr(size_mb: int = 1024, s3: bool = True) -> list[Figure]:
    m = measure_pitr(size_mb, s3)
    note = f"{m['mb']:.0f} MB of state, all 8 steps, --at a point; "
    figures = [
        info("pitr_restore_1gb_s", float(m["file_s"]), "s", note + "file:// replica: " + str(m["file_steps"]))
    ]
    if s3:
        figures.append(
            info(
                "pitr_restore_s3_1gb_s",
                float(m["s3_s"]),
                "s",
                note + "moto S3 over HTTP: " + str(m["s3_steps"]),
            )
        )
    return figures


def run_overhead(rounds: int = 3, seconds: float = 10.0, writes: float = 20.0) -> list[Figure]:
    off, on = measure_overhead(rounds, seconds, writes)
    rps_off, rps_on = [r for r, _, _ in off], [r for r, _, _ in on]
    cpu_off, cpu_on = [c for _, c, _ in off], [c for _, c, _ in on]
    shares = [100 * s for _, _, s in on]
    overhead = 100 * (1 - median(rps_on) / median(rps_off))
    note = f"{rounds} alternating rounds of {seconds:g} s, {writes:g} registry writes/s beside"
    return [
        at_most("replica_verify_overhead_pct", overhead, "%", 10, note),
        info("replica_verify_rps_off", median(rps_off), "req/s", ", ".join(f"{r:.0f}" for r in rps_off)),
        info("replica_verify_rps_on", median(rps_on), "req/s", ", ".join(f"{r:.0f}" for r in rps_on)),
        info(
            "replica_verify_cpu_overhead_pct",
            100 * (median(cpu_on) / median(cpu_off) - 1),
            "%",
            "server CPU per request (Litestream included), on vs off: "
            + ", ".join(f"{a:.2f}/{b:.2f} ms" for a, b in zip(cpu_on, cpu_off, strict=True)),
        ),
        info(
            "replica_litestream_cpu_share_pct",
            median(shares),
            "%",
            "Litestream's CPU / the server's during the load: " + ", ".join(f"{s:.1f}" for s in shares),
        ),
    ]


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
    parser.add_argument("--pitr", action="store_true", help="only the point-in-time restore RTO (file, S3)")
    parser.add_argument("--no-s3", action="store_true", help="with --pitr: the file:// leg only")
    parser.add_argument("--overhead", action="store_true", help="only the replication overhead on /verify")
    args = parser.parse_args()
    if args.pitr:
        figures = run_pitr(args.rto_mb, not args.no_s3)
    elif args.overhead:
        figures = run_overhead(args.rounds, args.seconds)
    else:
        figures = run(args.rounds, args.seconds, args.rate, args.rto_mb)
    for figure in figures:
        print(figure)


if __name__ == "__main__":
    main()
