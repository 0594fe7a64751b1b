"""Sustained ``POST /verify`` against a real ``cap serve --no-prefect`` on loopback, beside in-process verify.

Builds a data directory holding the test world's key, keyring and registry entry (so the proof verifies OK
with a registry hit), starts ``cap serve`` on a free port, mints a real ES256 token from the dev issuer and
drives the API with an asyncio httpx client for a bounded time. Prints throughput, p50/p99 latency, errors,
the client's own CPU and the server processes' CPU, then the in-process ``verify_document`` rate for the same
proof. Figures only; nothing asserts. Run:

    .venv/bin/python bench/verify_http.py [--workers 2] [--seconds 10] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core import service  # noqa: E402
from core.dev_issuer import DevIssuer  # noqa: E402
from core.fsio import atomic_write  # noqa: E402
from core.keyring import save_keyring  # noqa: E402
from core.keys import KeyStore, build_metadata  # noqa: E402
from core.modes import CheckStatus, EnforcementMode  # noqa: E402
from core.proof import proof_file_bytes  # noqa: E402
from core.settings import Settings  # noqa: E402
from tests.world import NOW, World  # noqa: E402


def prepare(root: Path) -> tuple[Settings, World, bytes]:
    settings = Settings(data_dir=root / "var")
    world = World()
    proof = world.build().proof
    store = KeyStore(settings.layout)
    store.import_public(build_metadata(world.signer.public_key_b64, "Test Co", NOW))
    atomic_write(settings.layout.private_key_path(world.signer.kid), world.signer.to_pem(), mode=0o600)
    save_keyring(settings.layout.keyring, world.keyring)
    service.register_proof(settings, proof, CheckStatus.OK, world.signer, datetime.now(UTC))
    body = b'{"proof":' + proof_file_bytes(proof).rstrip() + b"}"
    return settings, world, body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_cpu(pid: int) -> float:
    """User+system CPU seconds of ``pid`` and all its descendants (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += stats.get(current, (0, 0.0))[1]
        todo += [p for p, (ppid, _) in stats.items() if ppid == current]
    return total


async def drive(
    url: str, body: bytes, token: str, seconds: float, concurrency: int
) -> tuple[list[float], int]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=10) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                r = await client.post("/verify", content=body)
                latencies.append(time.perf_counter() - start)
                if r.status_code != 200 or r.json()["result"] != "OK":
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(240):
        if proc.poll() is not None:
            raise SystemExit("cap serve exited during startup")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit("cap serve did not become ready")


def in_process_rate(settings: Settings, world: World, seconds: float) -> tuple[float, float]:
    """Verifications per wall second and CPU milliseconds per verification (one thread)."""
    proof = world.build().proof
    keyring = world.keyring
    n, end, cpu0 = 0, time.perf_counter() + seconds, time.process_time()
    while time.perf_counter() < end:
        service.verify_document(
            settings, proof, keyring=keyring, mode=EnforcementMode.STRICT, now=datetime.now(UTC)
        )
        n += 1
    return n / seconds, (time.process_time() - cpu0) * 1000 / n


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cap-bench-http-"))
    settings, world, body = prepare(root)
    port = free_port()
    env = {**os.environ, "CAP_DATA_DIR": str(settings.data_dir), "CAP_ENV": "dev"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deployments.cli",
            "serve",
            "--no-prefect",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        token = DevIssuer(settings.layout.dev_issuer_dir).mint(["verify:run"], ttl=3600, now=int(time.time()))
        asyncio.run(drive(url, body, token, args.warmup, args.concurrency))
        cpu0, self0, t0 = server_cpu(proc.pid), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        latencies, errors = asyncio.run(drive(url, body, token, args.seconds, args.concurrency))
        wall = time.perf_counter() - t0
        cpu1, self1 = server_cpu(proc.pid), resource.getrusage(resource.RUSAGE_SELF)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    client_cpu = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
    rate, cpu_ms = in_process_rate(settings, world, min(args.seconds, 5.0))
    server_ms = (cpu1 - cpu0) * 1000 / max(1, len(latencies))
    print(
        json.dumps(
            {
                "bytes_per_request": len(body),
                "workers": args.workers,
                "concurrency": args.concurrency,
                "cpus": os.cpu_count(),
            }
        )
    )
    print(
        f"HTTP  POST /verify : {len(latencies) / wall:8.0f} req/s   p50 {pct(latencies, 0.5):6.2f} ms   "
        f"p99 {pct(latencies, 0.99):6.2f} ms   errors {errors}   ({len(latencies)} requests in {wall:.1f} s)"
    )
    print(
        f"      CPU          : server {cpu1 - cpu0:5.1f} s ({(cpu1 - cpu0) / wall:.2f} cores)   "
        f"client {client_cpu:5.1f} s ({client_cpu / wall:.2f} cores)   server CPU/request {server_ms:.2f} ms"
    )
    print(
        f"in-process verify  : {rate:8.0f} /s on one thread, {cpu_ms:.2f} ms CPU each "
        "(same proof, registry on)"
    )
    print(
        f"CPU-bound ceiling  : {1000 * (os.cpu_count() or 1) / server_ms:8.0f} req/s "
        "if the server had every core "
        f"(cores / server CPU per request); load average now {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
