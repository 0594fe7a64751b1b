"""Sustained ``POST /verify`` against a real ``cap serve --no-prefect`` on loopback, beside in-process verify.

Builds a data directory holding the test world's key, keyring and registry entry (so the proof verifies OK
with a registry hit), starts ``cap serve`` on a free port, mints a real ES256 token from the dev issuer and
drives the API for a bounded time with a closed loop of ``concurrency`` keep-alive connections. Prints
throughput, p50/p99 latency, errors (non-200 or ``result`` not OK), the load generator's own CPU and the
server processes' CPU, then the in-process ``verify_document`` rate for the same proof. Figures only;
nothing asserts.

The load generator is wrk (C; ``scripts/install_wrk.sh``, run by ``make bench``), which costs a few per cent
of a core at 1,000 req/s; the server and the client share the machine's two cores, so a Python client
(which takes a whole core for the same rate) measures mostly itself. Without wrk the asyncio httpx client
below is used and the figures say so. Run:

    .venv/bin/python bench/verify_http.py [--workers 2] [--seconds 10] [--concurrency 16] [--client httpx]

``run(...)`` returns the same as figures for ``python -m bench``; ``start_server``/``drive`` are reused by
``bench/bench_rotation.py`` and ``bench/soak.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
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
from core.anchors import trust_anchors  # noqa: E402
from core.dev_issuer import DevIssuer  # noqa: E402
from core.fsio import atomic_write  # noqa: E402
from core.keyring import save_keyring  # noqa: E402
from core.keys import KeyStore, build_metadata  # noqa: E402
from core.modes import CheckStatus, EnforcementMode  # noqa: E402
from core.proof import proof_file_bytes  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.store import registry_handle  # noqa: E402
from tests.world import NOW, World  # noqa: E402

VENV_BIN = Path(sys.executable).parent
# Each wrk thread counts responses that are not a 200 with result OK; done() prints one JSON line.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("CAP_BENCH_TOKEN")
local f = assert(io.open(os.getenv("CAP_BENCH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()

local threads = {}
function setup(thread) table.insert(threads, thread) end
bad = 0
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"result":"OK"', 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local bad_total = 0
  for _, t in ipairs(threads) do bad_total = bad_total + t:get("bad") end
  local e = summary.errors
  io.write(string.format(
    'CAP-WRK {"requests":%d,"duration_us":%d,"bad":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, bad_total, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def prepare(root: Path, database_url: str | None = None) -> tuple[Settings, World, bytes]:
    """A data dir with the world's key, keyring and lists, and the proof registered (in ``database_url``'s
    registry when given: ``CAP_DATABASE_URL``)."""
    settings = Settings(data_dir=root / "var", database_url=database_url)
    world = World(lists_built_at=datetime.now(UTC))  # the server verifies on the real clock
    proof = world.build().proof
    store = KeyStore(settings.layout)
    store.import_public(build_metadata(world.signer.public_key_b64, "Test Co", NOW))
    atomic_write(settings.layout.private_key_path(world.signer.kid), world.signer.to_pem(), mode=0o600)
    save_keyring(settings.layout.keyring, world.keyring)
    files = Settings(data_dir=settings.data_dir)  # installed lists are node files on either engine (ADR 0013)
    service.install_lists(files, world.lists_file, datetime.now(UTC))
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
                if r.status_code != 200 or r.json()["result"] == "FAIL":  # WARN: not in the registry
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def wrk_binary() -> str | None:
    """wrk from ``make bench``'s install (``.venv/bin``) or the PATH."""
    local = VENV_BIN / "wrk"
    return str(local) if local.exists() else shutil.which("wrk")


def drive_wrk(
    wrk: str, url: str, body: bytes, token: str, seconds: float, concurrency: int
) -> dict[str, float]:
    """One wrk run: requests, wall seconds, bad responses, socket errors, p50/p99 ms, its own CPU seconds."""
    with tempfile.TemporaryDirectory(prefix="cap-wrk-") as tmp:
        script, body_path = Path(tmp) / "verify.lua", Path(tmp) / "body.json"
        script.write_text(WRK_SCRIPT)
        body_path.write_bytes(body)
        env = {**os.environ, "CAP_BENCH_TOKEN": token, "CAP_BENCH_BODY": str(body_path)}
        threads = max(1, min(2, concurrency))
        command = [wrk, "-t", str(threads), "-c", str(concurrency), "-d", f"{max(1, round(seconds))}s"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            [*command, "-s", str(script), url + "/verify"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("CAP-WRK ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed (exit {done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    data = json.loads(line.removeprefix("CAP-WRK "))
    return {
        "requests": data["requests"],
        "wall": data["duration_us"] / 1e6,
        "errors": data["bad"] + data["socket_errors"],
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "client_cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    }


def drive_httpx(url: str, body: bytes, token: str, seconds: float, concurrency: int) -> dict[str, float]:
    """The same figures from the asyncio httpx client (measured in this process)."""
    self0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    latencies, errors = asyncio.run(drive(url, body, token, seconds, concurrency))
    wall, self1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    return {
        "requests": len(latencies),
        "wall": wall,
        "errors": errors,
        "p50_ms": pct(latencies, 0.5),
        "p99_ms": pct(latencies, 0.99),
        "client_cpu_s": (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime),
    }


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
    keyring, registry = world.keyring, registry_handle(settings)  # as the API holds it
    trust = trust_anchors(settings)
    n, end, cpu0 = 0, time.perf_counter() + seconds, time.process_time()
    while time.perf_counter() < end:
        service.verify_document(
            settings,
            proof,
            keyring=keyring,
            mode=EnforcementMode.STRICT,
            now=datetime.now(UTC),
            trust=trust,
            registry=registry,
        )
        n += 1
    return n / seconds, (time.process_time() - cpu0) * 1000 / n


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def start_server(
    settings: Settings, workers: int, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``cap serve --no-prefect`` on a free loopback port over ``settings.data_dir``; (process, url)."""
    port = free_port()
    env = {**os.environ, "CAP_DATA_DIR": str(settings.data_dir), "CAP_ENV": "dev", **(extra_env or {})}
    if settings.database_url is not None:
        env["CAP_DATABASE_URL"] = settings.database_url.get_secret_value()
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


def worker_peak_rss_mb(pid: int) -> float:
    """The largest peak RSS (VmHWM) among ``pid``'s descendants: the API worker that held the big proof."""
    peak = 0.0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if _descends(int(status.parent.name), pid) and "VmHWM" in fields:
            peak = max(peak, int(fields["VmHWM"].split()[0]) / 1024)
    return peak


def _descends(child: int, ancestor: int) -> bool:
    while child > 1:
        if child == ancestor:
            return True
        try:
            child = int((Path("/proc") / str(child) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
    return False


def large_proof(url: str, token: str, body: bytes, repeat: int = 5) -> list[float]:
    """Sequential ``POST /verify`` of one large proof; seconds per request (each must be 200, not FAIL)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    seconds = []
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        for _ in range(repeat):
            start = time.perf_counter()
            r = client.post("/verify", content=body)
            seconds.append(time.perf_counter() - start)
            if r.status_code != 200 or r.json()["result"] == "FAIL":  # WARN: not in the registry
                raise SystemExit(f"large proof: HTTP {r.status_code} {r.text[:300]}")
    return seconds


def measure(
    workers: int = 2,
    seconds: float = 10.0,
    warmup: float = 2.0,
    concurrency: int = 16,
    client: str = "auto",
    large_suppliers: int = 0,
    database_url: str | None = None,
) -> dict:
    """Throughput, latency, errors and CPU of both sides; ``client`` is ``wrk``, ``httpx`` or ``auto``."""
    wrk = wrk_binary() if client in ("auto", "wrk") else None
    if client == "wrk" and wrk is None:
        raise SystemExit("wrk is not installed: run scripts/install_wrk.sh .venv/bin (make bench does)")
    root = Path(tempfile.mkdtemp(prefix="cap-bench-http-"))
    settings, world, body = prepare(root, database_url)
    proc, url = start_server(settings, workers)
    try:
        token = DevIssuer(settings.layout.dev_issuer_dir).mint(["verify:run"], ttl=3600, now=int(time.time()))

        def load(duration: float) -> dict[str, float]:
            if wrk is not None:
                return drive_wrk(wrk, url, body, token, duration, concurrency)
            return drive_httpx(url, body, token, duration, concurrency)

        load(warmup)
        cpu0, t0 = server_cpu(proc.pid), time.perf_counter()
        m = load(seconds)
        server_wall, cpu1 = time.perf_counter() - t0, server_cpu(proc.pid)
        large: dict[str, float] = {}
        if large_suppliers:
            from bench.bench_proof import signed_proof_bytes

            data, large_lists = signed_proof_bytes(large_suppliers, 50_000, world.signer, datetime.now(UTC))
            service.install_lists(settings, large_lists, datetime.now(UTC))  # the server reloads it
            big = b'{"proof":' + data.rstrip() + b"}"
            rss0 = worker_peak_rss_mb(proc.pid)
            times = large_proof(url, token, big)
            large = {
                "large_mb": len(big) / 1e6,
                "large_s": sorted(times)[len(times) // 2],
                "large_rss_mb": worker_peak_rss_mb(proc.pid),
                "rss_before_mb": rss0,
            }
    finally:
        stop_server(proc)
    rate, cpu_ms = in_process_rate(settings, world, min(seconds, 5.0))
    server_cpu_s = cpu1 - cpu0
    return {
        **m,
        **large,
        "client": "wrk" if wrk is not None else "httpx",
        "bytes": len(body),
        "workers": workers,
        "concurrency": concurrency,
        "rps": m["requests"] / m["wall"],
        "server_cpu_s": server_cpu_s,
        "server_cores": server_cpu_s / server_wall,
        "client_cores": m["client_cpu_s"] / server_wall,
        "server_ms_per_request": server_cpu_s * 1000 / max(1, m["requests"]),
        "inprocess_rps": rate,
        "inprocess_cpu_ms": cpu_ms,
    }


def run(
    workers: int = 2, seconds: float = 10.0, concurrency: int = 16, client: str = "auto", large: int = 10_000
) -> list[Figure]:
    """``verify_http_rps`` (≥ 1,000), ``verify_http_p99_ms`` (≤ 50), CPU of both sides, in-process rate, and
    one ``large``-supplier proof over HTTP (latency and the worker's peak memory)."""
    m = measure(workers, seconds, min(2.0, seconds / 3), concurrency, client, large)
    note = f"{m['client']}, {m['workers']} workers, {m['concurrency']} connections"
    note += f", {m['requests']} requests in {m['wall']:.0f} s"
    return [
        at_least(
            "verify_http_rps", m["rps"], "req/s", 1000, note + f"; original 22-27 = x{m['rps'] / 27:.1f}"
        ),
        info("verify_http_p50_ms", m["p50_ms"], "ms", note),
        at_most("verify_http_p99_ms", m["p99_ms"], "ms", 50, "original p95 0.89-7.2 s"),
        at_most("verify_http_errors", m["errors"], "requests", 0, "non-200 or result != OK"),
        info("verify_http_server_cores", m["server_cores"], "cores", "cap serve + workers"),
        info(
            "verify_http_client_cores",
            m["client_cores"],
            "cores",
            f"load generator ({m['client']}), same machine",
        ),
        info("verify_http_server_cpu_ms", m["server_ms_per_request"], "ms/req", "server CPU per request"),
        info(
            "verify_inprocess_rps", m["inprocess_rps"], "verify/s", "verify_document, one thread, registry on"
        ),
        info("verify_inprocess_cpu_ms", m["inprocess_cpu_ms"], "ms", "CPU per in-process verification"),
    ] + (
        [
            info(
                "verify_http_large_s",
                m["large_s"],
                "s",
                f"{large:,}-supplier proof, {m['large_mb']:.1f} MB, median of 5",
            ),
            info(
                "verify_http_large_rss_mb",
                m["large_rss_mb"],
                "MB",
                f"API worker peak RSS (before {m['rss_before_mb']:.0f} MB)",
            ),
        ]
        if large
        else []
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--client", choices=("auto", "wrk", "httpx"), default="auto")
    ap.add_argument("--large", type=int, default=0, help="also POST one proof over this many suppliers")
    args = ap.parse_args()
    m = measure(args.workers, args.seconds, args.warmup, args.concurrency, args.client, args.large)
    print(
        json.dumps(
            {k: m[k] for k in ("client", "bytes", "workers", "concurrency")} | {"cpus": os.cpu_count()}
        )
    )
    wall = m["wall"]
    print(
        f"HTTP  POST /verify : {m['rps']:8.0f} req/s   p50 {m['p50_ms']:6.2f} ms   "
        f"p99 {m['p99_ms']:6.2f} ms   errors {m['errors']}   ({m['requests']} requests in {wall:.1f} s)"
    )
    print(
        f"      CPU          : server {m['server_cpu_s']:5.1f} s ({m['server_cores']:.2f} cores)   "
        f"client {m['client_cpu_s']:5.1f} s ({m['client_cores']:.2f} cores)   "
        f"server CPU/request {m['server_ms_per_request']:.2f} ms"
    )
    print(
        f"in-process verify  : {m['inprocess_rps']:8.0f} /s on one thread, "
        f"{m['inprocess_cpu_ms']:.2f} ms CPU each (same proof, registry on)"
    )
    if args.large:
        print(
            f"large proof        : {args.large:,} suppliers, {m['large_mb']:.1f} MB: "
            f"{m['large_s']:.2f} s per verify, worker peak RSS {m['large_rss_mb']:.0f} MB "
            f"(before {m['rss_before_mb']:.0f} MB)"
        )
    print(
        f"CPU-bound ceiling  : {1000 * (os.cpu_count() or 1) / m['server_ms_per_request']:8.0f} req/s "
        "if the server had every core "
        f"(cores / server CPU per request); load average now {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
