"""Soak: a bounded mixed workload against a live ``cap serve --no-prefect`` (2 API workers) on loopback.

For ``--minutes`` minutes: clients stream ``POST /verify`` (real ES256 tokens from the dev issuer); every
``--backup-every`` seconds a backup of the live data dir (``core.backup.service.backup_now``, file store);
every ``--reverify-every`` seconds a verification run over the registry (the ``verification-run`` flow's
tasks via ``.fn()``: load entries, trust, re-verify, drift); at the half-way mark one key rotation 0→3
(forced; proofs switch to the new key after sign-switch, before decommission, as a client would). The RSS
of every API worker is sampled every few seconds.

Pass = 0 failed requests (non-200 or result FAIL, or transport errors), 0 failed operations, and flat worker
memory: RSS growth from the first sample after warm-up to the last ≤ max(10 %, 15 MB) per worker.
Exit code 0 on pass, 1 otherwise. Not part of ``make test``; run ``make soak`` (3 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import Figure, at_most, format_table, info  # noqa: E402
from bench.verify_http import prepare, start_server, stop_server  # noqa: E402
from core import service  # noqa: E402
from core.backup import service as backups  # noqa: E402
from core.dev_issuer import DevIssuer  # noqa: E402
from core.keys import KeyStore  # noqa: E402
from core.modes import EnforcementMode  # noqa: E402
from core.proof import proof_file_bytes  # noqa: E402
from core.reverify import run_summary  # noqa: E402
from core.rotation import make_request  # noqa: E402
from core.settings import Settings  # noqa: E402
from tests.world import World  # noqa: E402

MAX_REQUESTS = 2_000_000  # hard bound on the load loop besides the deadline


@dataclass
class Tally:
    requests: int = 0
    failures: int = 0
    operations: dict[str, int] = field(default_factory=dict)
    op_failures: list[str] = field(default_factory=list)
    rss: dict[int, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def op(self, name: str) -> None:
        with self.lock:
            self.operations[name] = self.operations.get(name, 0) + 1


def _verify_loop(url: str, token: str, body: dict[str, bytes], stop: threading.Event, tally: Tally) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        while not stop.is_set() and tally.requests < MAX_REQUESTS:
            try:
                r = client.post("/verify", content=body["current"])
                bad = r.status_code != 200 or r.json()["result"] == "FAIL"
            except httpx.HTTPError:
                bad = True
            with tally.lock:
                tally.requests += 1
                tally.failures += bad


def _workers(server_pid: int) -> list[psutil.Process]:
    """The uvicorn worker processes (the leaves below ``cap serve``)."""
    try:
        children = psutil.Process(server_pid).children(recursive=True)
    except psutil.Error:
        return []
    leaves = [p for p in children if not p.children()]
    return [p for p in leaves if "resource_tracker" not in " ".join(_cmdline(p))]


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def _sample_rss(server_pid: int, tally: Tally) -> None:
    for proc in _workers(server_pid):
        try:
            tally.rss.setdefault(proc.pid, []).append(proc.memory_info().rss / 2**20)
        except psutil.Error:
            continue


def _guarded(name: str, fn, tally: Tally) -> None:  # type: ignore[no-untyped-def]
    try:
        fn()
        tally.op(name)
    except Exception as exc:  # a soak reports every failure, whatever its type
        tally.op_failures.append(f"{name}: {type(exc).__name__}: {exc}")


def _reverify(settings: Settings) -> None:
    from tasks import verification as t

    entries = t.load_entries.fn(settings, None)
    trust = t.load_trust.fn(settings, None)
    reports = t.reverify_entries.fn(entries, trust, EnforcementMode.RELAXED, datetime.now(UTC))
    from datetime import timedelta

    drifts = t.analyse_drift.fn(entries, reports, trust, timedelta(hours=24))
    run_summary(reports, drifts)


def _rotate(settings: Settings, body: dict[str, bytes]) -> None:
    store = KeyStore(settings.layout)
    (old,) = [k for k in store.list() if k.status.value == "active"][:1]
    for phase in (0, 1, 2):
        service.rotate_signing_key(settings, make_request(phase, force=True, actor="soak"), datetime.now(UTC))
    new = next(k for k in store.list() if k.kid != old.kid)
    proof = World(signer=store.signer(new.kid), lists_built_at=datetime.now(UTC)).build().proof
    body["current"] = b'{"proof":' + proof_file_bytes(proof).rstrip() + b"}"
    time.sleep(2.0)  # in-flight requests with the old proof finish while both keys are accepted
    service.rotate_signing_key(settings, make_request(3, force=True, actor="soak"), datetime.now(UTC))


def soak(
    minutes: float, clients: int, backup_every: float, reverify_every: float
) -> tuple[list[Figure], bool]:
    root = Path(tempfile.mkdtemp(prefix="cap-soak-"))
    settings, _, first = prepare(root)
    body = {"current": first}
    proc, url = start_server(settings, workers=2)
    tally, stop = Tally(), threading.Event()
    token = DevIssuer(settings.layout.dev_issuer_dir).mint(
        ["verify:run"], ttl=int(minutes * 60) + 600, now=int(time.time())
    )
    threads = [
        threading.Thread(target=_verify_loop, args=(url, token, body, stop, tally)) for _ in range(clients)
    ]
    start = time.monotonic()
    deadline = start + minutes * 60
    next_backup, next_reverify, rotated = start + 5, start + 10, False
    try:
        for thread in threads:
            thread.start()
        while time.monotonic() < deadline:
            now = time.monotonic()
            _sample_rss(proc.pid, tally)
            if now >= next_backup:
                _guarded("backup", lambda: backups.backup_now(settings, now=datetime.now(UTC)), tally)
                next_backup = now + backup_every
            if now >= next_reverify:
                _guarded("verification_run", lambda: _reverify(settings), tally)
                next_reverify = now + reverify_every
            if not rotated and now >= start + minutes * 30:
                _guarded("rotation_0to3", lambda: _rotate(settings, body), tally)
                rotated = True
            time.sleep(min(3.0, max(0.0, deadline - time.monotonic())))
        _sample_rss(proc.pid, tally)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        stop_server(proc)
    wall = time.monotonic() - start
    return _figures(tally, wall)


def _figures(tally: Tally, wall: float) -> tuple[list[Figure], bool]:
    growth, flat = [], True
    for samples in tally.rss.values():
        if len(samples) < 4:
            continue
        base = samples[len(samples) // 5]  # first sample after ~20 % warm-up
        grew = samples[-1] - base
        growth.append(grew)
        flat &= grew <= max(0.10 * base, 15.0)
    peak = max((max(s) for s in tally.rss.values()), default=0.0)
    figures = [
        info("soak_wall_s", wall, "s"),
        info("soak_verify_requests", tally.requests, "requests", f"{tally.requests / wall:.0f} req/s"),
        at_most("soak_verify_failures", tally.failures, "requests", 0, "non-200, FAIL or transport error"),
        at_most("soak_operation_failures", len(tally.op_failures), "ops", 0, json.dumps(tally.operations)),
        info("soak_worker_rss_peak_mb", peak, "MB", f"{len(tally.rss)} workers sampled"),
        Figure(
            "soak_worker_rss_growth_mb",
            max(growth, default=0.0),
            "MB",
            "<= max(10 %, 15 MB)",
            flat,
            "largest per-worker growth after warm-up",
        ),
    ]
    ok = tally.failures == 0 and not tally.op_failures and flat and "rotation_0to3" in tally.operations
    for failure in tally.op_failures:
        print(failure, file=sys.stderr)
    return figures, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--backup-every", type=float, default=30.0)
    parser.add_argument("--reverify-every", type=float, default=20.0)
    args = parser.parse_args()
    if not 0 < args.minutes <= 60:
        raise SystemExit("--minutes must be in (0, 60]")
    figures, ok = soak(args.minutes, args.clients, args.backup_every, args.reverify_every)
    print(format_table(figures))
    print(f"\nsoak {'PASSED' if ok else 'FAILED'} (load average {os.getloadavg()[0]:.1f})")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
