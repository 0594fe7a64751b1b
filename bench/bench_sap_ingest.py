"""Benchmark: ingest 50,000 suppliers + 200,000 purchase orders from the local SAP mock over loopback HTTP.

The server runs in a subprocess (so its memory is not counted); the client streams the three entity
sets, maps them and prints wall time, records, and peak memory (the process's max RSS; with
``--tracemalloc`` also the peak of traced Python allocations, which slows the run).
With ``--pipeline`` it runs the whole use case instead (``core.sap.pipeline.ingest``: extract, map,
screen against the example OFAC + UN extracts, commit, build the strict proof, register in a fresh
SQLite registry, verify in-process) and prints the wall time, proof size and peak memory.
Figures are printed only, never asserted.

    .venv/bin/python bench/bench_sap_ingest.py [--suppliers N] [--orders N] [--version 2|4]
        [--page-size N] [--tracemalloc] [--pipeline]

``run(...)`` returns the pipeline figures for ``python -m bench``.
"""

from __future__ import annotations

import argparse
import resource
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import Figure, info  # noqa: E402
from core.sap.mapping import build_supplier_records  # noqa: E402
from core.sap.odata import ODataClient  # noqa: E402
from core.sap.pipeline import IngestResult, ingest, load_ingest_config  # noqa: E402
from core.settings import Settings  # noqa: E402

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, suppliers: int, orders: int, version: int) -> subprocess.Popen[bytes]:
    code = (
        "from deployments.sap_mock import serve; "
        f"serve('127.0.0.1', {port}, odata_version={version}, "
        f"n_suppliers={suppliers}, n_purchase_orders={orders})"
    )
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 300.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise SystemExit("mock server exited")
        try:
            httpx.get(url + "/healthz-probe", timeout=1.0)
            return time.perf_counter() - start
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("mock server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suppliers", type=int, default=50_000)
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--version", type=int, choices=(2, 4), default=2)
    parser.add_argument("--page-size", type=int, default=5000)
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (slower)")
    parser.add_argument("--pipeline", action="store_true", help="the whole ingest → proof → verify use case")
    args = parser.parse_args()
    if args.pipeline:
        return bench_pipeline(args)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(port, args.suppliers, args.orders, args.version)
    try:
        startup = wait_ready(url, proc)
        if args.tracemalloc:
            tracemalloc.start()
        started = time.perf_counter()
        with ODataClient(url, version=args.version, page_size=args.page_size, timeout=120.0) as client:
            result = build_supplier_records(
                client.iter_business_partners(),
                client.iter_suppliers(),
                client.iter_purchase_orders(ordered_from=(NOW - timedelta(days=365)).date()),
                now=NOW,
                lookback_days=365,
            )
        wall = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if args.tracemalloc else None
        tracemalloc.stop()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"SAP ingest bench: OData v{args.version}, {args.suppliers:,} suppliers, "
        f"{args.orders:,} purchase orders"
    )
    print(f"  server start (generate data): {startup:.1f} s")
    print(f"  ingest wall time:             {wall:.2f} s")
    print(f"  orders used (in window):      {result.orders_used:,}")
    print(f"  records: {len(result.records):,} (tiers {dict(sorted(result.tier_counts.items()))})")
    print(f"  dropped: {', '.join(f'{k.value}={v}' for k, v in sorted(result.dropped.items()))}")
    if peak is not None:
        print(f"  client peak Python memory:    {peak / 2**20:.1f} MiB (tracemalloc)")
    print(f"  client max RSS:               {rss_mb:.1f} MiB")


def run_pipeline(url: str, version: int, page_size: int) -> tuple[IngestResult, float, int]:
    """One full ingest into a fresh data dir; returns the result, wall time and the proof's size."""
    config = load_ingest_config(ROOT / "examples/sap/sap-ingest.yml").model_copy(
        update={"base_url": url, "odata_version": version, "page_size": page_size, "timeout_seconds": 300.0}
    )
    with tempfile.TemporaryDirectory(prefix="bench-sap-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "var", build_dir=Path(tmp) / "build")
        started = time.perf_counter()
        result = ingest(config, settings, NOW, env={"CAP_SAP_COMPANY_SECRET": "bench-secret"})
        wall = time.perf_counter() - started
        size = (settings.layout.registry_db).stat().st_size
    return result, wall, size


def run(
    suppliers: int = 10_000, orders: int = 40_000, version: int = 2, page_size: int = 5000
) -> list[Figure]:
    """SAP OData ingest → screening → commitments → proof → verify over loopback; no SPEC target."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(port, suppliers, orders, version)
    try:
        wait_ready(url, proc)
        result, wall, _ = run_pipeline(url, version, page_size)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    note = f"OData v{version}, {suppliers:,} suppliers, {orders:,} orders, result {result.result.value}"
    return [info("sap_ingest_pipeline_s", wall, "s", note)]


def bench_pipeline(args: argparse.Namespace) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(port, args.suppliers, args.orders, args.version)
    try:
        startup = wait_ready(url, proc)
        if args.tracemalloc:
            tracemalloc.start()
        result, wall, registry_bytes = run_pipeline(url, args.version, args.page_size)
        peak = tracemalloc.get_traced_memory()[1] if args.tracemalloc else None
        tracemalloc.stop()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"SAP pipeline bench: OData v{args.version}, {args.suppliers:,} suppliers, {args.orders:,} orders")
    print(f"  server start (generate data): {startup:.1f} s")
    print(f"  ingest → proof → verify wall: {wall:.2f} s")
    print(f"  result: {result.result.value}; {result.supplier_count:,} suppliers, {result.ubo_count} UBOs")
    print(f"  registry file:                {registry_bytes / 2**20:.1f} MiB")
    if peak is not None:
        print(f"  client peak Python memory:    {peak / 2**20:.1f} MiB (tracemalloc)")
    print(f"  client max RSS:               {rss_mb:.1f} MiB")


if __name__ == "__main__":
    main()
