"""Sustained ``POST /verify`` against a real ``cap serve --no-prefect`` on loopback, beside in-process verify.

Builds a data directory holding the test world's key, keyring and registry entry (so the proof verifies OK
with a registry hit), starts ``cap serve`` on a free port, mints a real ES256 token from the dev issuer and
drives the API with an asyncio httpx client for a bounded time. Prints throughput, p50/p99 latency, errors,
the client's own CPU and the server processes' CPU, then the in-process ``verify_document`` rate for the same
proof. Figures only; nothing asserts. Run:

    .venv/bin/python bench/verify_http.py [--workers 2] [--seconds 10] [--concurrency 32]

``run(...)`` returns the same as figures for ``python -m bench``; ``start_server``/``drive`` are reused by
``bench/bench_rotation.py`` and ``bench/soak.py``.
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

from bench import Figure, at_least, at_most, info  # noqa: E402
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


def start_server(settings: Settings, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """``cap serve --no-prefect`` on a free loopback port over ``settings.data_dir``; (process, url)."""
    port = free_port()
    env = {**os.environ, "CAP_DATA_DIR": str(settings.data_dir), "CAP_ENV": "dev"}
    env.pop("PREFECT_API_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-m", "deployments.cli", "serve", "--no-prefect", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
    except BaseException:
        stop_server(proc)
        raise
    return proc, url


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def measure(workers: int = 2, seconds: float = 10.0, warmup: float = 2.0, concurrency: int = 32) -> dict:
    root = Path(tempfile.mkdtemp(prefix="cap-bench-http-"))
    settings, world, body = prepare(root)
    proc, url = start_server(settings, workers)
    try:
        token = DevIssuer(settings.layout.dev_issuer_dir).mint(["verify:run"], ttl=3600, now=int(time.time()))
        asyncio.run(drive(url, body, token, warmup, concurrency))
        cpu0, self0, t0 = server_cpu(proc.pid), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        latencies, errors = asyncio.run(drive(url, body, token, seconds, concurrency))
        wall = time.perf_counter() - t0
        cpu1, self1 = server_cpu(proc.pid), resource.getrusage(resource.RUSAGE_SELF)
    finally:
        stop_server(proc)
    client_cpu = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
    rate, cpu_ms = in_process_rate(settings, world, min(seconds, 5.0))
    return {
        "bytes": len(body),
        "workers": workers,
        "concurrency": concurrency,
        "requests": len(latencies),
        "wall": wall,
        "rps": len(latencies) / wall,
        "p50_ms": pct(latencies, 0.5),
        "p99_ms": pct(latencies, 0.99),
        "errors": errors,
        "server_cpu_s": cpu1 - cpu0,
        "client_cpu_s": client_cpu,
        "server_ms_per_request": (cpu1 - cpu0) * 1000 / max(1, len(latencies)),
        "inprocess_rps": rate,
        "inprocess_cpu_ms": cpu_ms,
    }


def run(workers: int = 2, seconds: float = 10.0, concurrency: int = 32) -> list[Figure]:
    """``verify_http_rps`` (≥ 1,000), ``verify_http_p99_ms`` (≤ 50), CPU of both sides, in-process rate."""
    m = measure(workers, seconds, min(2.0, seconds / 3), concurrency)
    note = f"{m['workers']} workers, {m['concurrency']} connections"
    note += f", {m['requests']} requests in {m['wall']:.0f} s"
    return [
        at_least(
            "verify_http_rps", m["rps"], "req/s", 1000, note + f"; original 22-27 = x{m['rps'] / 27:.1f}"
        ),
        info("verify_http_p50_ms", m["p50_ms"], "ms", note),
        at_most("verify_http_p99_ms", m["p99_ms"], "ms", 50, "original p95 0.89-7.2 s"),
        at_most("verify_http_errors", m["errors"], "requests", 0, "non-200 or result != OK"),
        info("verify_http_server_cores", m["server_cpu_s"] / m["wall"], "cores", "cap serve + workers"),
        info(
            "verify_http_client_cores", m["client_cpu_s"] / m["wall"], "cores", "load generator, same machine"
        ),
        info("verify_http_server_cpu_ms", m["server_ms_per_request"], "ms/req", "server CPU per request"),
        info(
            "verify_inprocess_rps", m["inprocess_rps"], "verify/s", "verify_document, one thread, registry on"
        ),
        info("verify_inprocess_cpu_ms", m["inprocess_cpu_ms"], "ms", "CPU per in-process verification"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    m = measure(args.workers, args.seconds, args.warmup, args.concurrency)
    print(json.dumps({k: m[k] for k in ("bytes", "workers", "concurrency")} | {"cpus": os.cpu_count()}))
    wall = m["wall"]
    print(
        f"HTTP  POST /verify : {m['rps']:8.0f} req/s   p50 {m['p50_ms']:6.2f} ms   "
        f"p99 {m['p99_ms']:6.2f} ms   errors {m['errors']}   ({m['requests']} requests in {wall:.1f} s)"
    )
    print(
        f"      CPU          : server {m['server_cpu_s']:5.1f} s ({m['server_cpu_s'] / wall:.2f} cores)   "
        f"client {m['client_cpu_s']:5.1f} s ({m['client_cpu_s'] / wall:.2f} cores)   "
        f"server CPU/request {m['server_ms_per_request']:.2f} ms"
    )
    print(
        f"in-process verify  : {m['inprocess_rps']:8.0f} /s on one thread, "
        f"{m['inprocess_cpu_ms']:.2f} ms CPU each (same proof, registry on)"
    )
    print(
        f"CPU-bound ceiling  : {1000 * (os.cpu_count() or 1) / m['server_ms_per_request']:8.0f} req/s "
        "if the server had every core "
        f"(cores / server CPU per request); load average now {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
