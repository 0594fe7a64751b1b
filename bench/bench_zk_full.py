"""cap-proof.v3 at production size: the B = 64, depth 17 circuit against a 75,000-key list, proving 1,000 and
10,000 suppliers through the ``zk-prove`` flow, the incremental rebuild after 1 % more suppliers, and the
10,000-supplier document verified in-process and through ``POST /verify`` (``make bench-zk-full``).

About an hour of CPU on 2 cores: run it alone on the machine. Nothing is asserted; figures are printed beside
their targets (issue #18, docs/performance.md "v3 at production size") and written to
``bench/results-zk-full.json``.

**The phase 1 used here is TIMING ONLY.** A proper 2^19 phase 1 is hours of CPU with snarkjs (or a public
ceremony file fetched from outside, which this machine cannot reach), so this benchmark makes one with
tau = 1 (``powersoftau new`` then ``prepare phase2``, no contribution). Every prover and verifier step does
the same work on it as on a real one (same constraint system, same MSMs, FFTs and pairings), but the setup is
degenerate: its verifying key's public-input points are the point at infinity, so proofs under it bind no
public input. The verifier treats such a key like a development key (refused unless development keys are
allowed). Soundness is tested on the development circuits (tests/zk); this file only measures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import Figure, at_most, format_table, info, percentile
from core.zk.toolchain import cache_dir, snarkjs
from core.zk.witness import Circuit

CIRCUIT = Circuit(batch_size=64, depth=17)
PTAU_POWER = 19
LISTED = 75_000
HIGH_RISK = "iso_code,risk_level\nIR,HIGH\nKP,HIGH\nRU,HIGH\nCN,MEDIUM\n"
JURISDICTIONS = ("DE", "FR", "PL", "US", "CN", "IT", "NL", "CZ", "TR", "IN")
RESULTS = Path(__file__).with_name("results-zk-full.json")


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    t0, c0 = time.perf_counter(), _cpu()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - t0, _cpu() - c0


def timing_phase1() -> tuple[Path, list[Figure]]:
    """The cached tau = 1 phase 1 at 2^19 (TIMING ONLY), built on first use."""
    target = cache_dir() / "ptau" / f"timing-{PTAU_POWER}.ptau"
    if target.is_file():
        return target, [info("zk_full_phase1_s", 0, "s", f"cached {target.name} (tau = 1, TIMING ONLY)")]
    target.parent.mkdir(parents=True, exist_ok=True)
    raw, work = target.with_suffix(".raw"), target.with_suffix(".part")
    _, wall, cpu = _timed(
        lambda: (
            snarkjs("powersoftau", "new", "bn128", str(PTAU_POWER), str(raw), what="powersoftau new"),
            snarkjs("powersoftau", "prepare", "phase2", str(raw), str(work), what="prepare phase2"),
        )
    )
    work.rename(target)
    raw.unlink()
    note = (
        f"powersoftau new + prepare phase2 at 2^{PTAU_POWER}, tau = 1 (TIMING ONLY), {cpu / 60:.1f} min CPU"
    )
    return target, [info("zk_full_phase1_s", wall, "s", note)]


def timing_setup(ptau: Path) -> tuple[Path, list[Figure]]:
    """Compile the B = 64 circuit and run phase 2 (groth16 setup + beacon) on the timing phase 1."""
    from core.zk import ceremony
    from core.zk.toolchain import compile_circuit

    compiled, wall_c, cpu_c = _timed(compile_circuit, CIRCUIT)
    directory = cache_dir() / "setups" / compiled.directory.name / "timing"
    figures = [
        info("zk_full_constraints", compiled.info["constraints"], "constraints", CIRCUIT.name),
        info(
            "zk_full_compile_s", wall_c, "s", f"circom --O2, {cpu_c:.0f} s CPU (cached after the first run)"
        ),
    ]
    try:
        if ceremony.read_transcript(directory)["final"] is not None:
            return directory, figures
    except Exception:  # absent or half-built: rebuild
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
    _, wall, cpu = _timed(ceremony.new_setup, compiled, ptau, directory, production=False)
    _, wall_b, cpu_b = _timed(
        ceremony.beacon, directory, "ab" * 32, 10, name="timing beacon, NOT FOR PRODUCTION"
    )
    zkey_mb = (directory / "final.zkey").stat().st_size / 2**20
    figures += [
        info("zk_full_setup_s", wall, "s", f"groth16 setup, {cpu / 60:.1f} min CPU; zkey {zkey_mb:.0f} MB"),
        info("zk_full_beacon_s", wall_b, "s", f"phase-2 beacon, {cpu_b / 60:.1f} min CPU"),
    ]
    return directory, figures


class World:
    """A prover's data dir with a 75,000-key list installed and the timing setup pinned."""

    def __init__(self, root: Path, setup_dir: Path) -> None:
        from core import service
        from core.anchors import install_pin
        from core.sanctions import ListFormat
        from core.settings import Settings
        from core.zk.service import pin

        self.root, self.setup_dir, self.now = root, setup_dir, datetime.now(UTC)
        self.cfg = Settings(
            data_dir=root / "var", build_dir=root / "build", zk_allow_dev=True, zk_setup_dir=setup_dir
        )
        service.keygen(self.cfg, now=self.now)
        sanctions = root / "sanctions.csv"
        rows = "".join(f"Listed Party {i:06d} Holding,,RU\n" for i in range(LISTED))
        sanctions.write_text("name,birthdate,nationality\n" + rows)
        (root / "high_risk.csv").write_text(HIGH_RISK)
        self.lists = service.build_lists_file([(sanctions, ListFormat.CSV)], root / "high_risk.csv", self.now)
        service.install_lists(self.cfg, self.lists, self.now)
        self.lists_path = root / "lists.json"
        service.write_json(self.lists_path, self.lists)
        install_pin(self.cfg, pin(setup_dir))
        (root / "ubos.csv").write_text(
            "name,birthdate,citizenship\nMax Mustermann,1970-05-15,DE\nJane Doe,1985-11-22,US\n"
        )

    def suppliers(self, count: int, name: str) -> Path:
        """``count`` suppliers: tiers 1-3, ten jurisdictions, one in 500 in Russia (HIGH)."""
        path = self.root / f"{name}.csv"
        lines = ["name,jurisdiction,tier"]
        for i in range(count):
            jurisdiction = "RU" if i % 500 == 499 else JURISDICTIONS[i % len(JURISDICTIONS)]
            lines.append(f"Supplier {i:06d} Handels GmbH,{jurisdiction},{1 + i % 3}")
        path.write_text("\n".join(lines) + "\n")
        return path

    def seed(self, hex_seed: str) -> Path:
        path = self.root / f"seed-{hex_seed[:4]}.hex"
        path.write_text(hex_seed)
        return path

    def prove_flow(self, suppliers: Path, seed: Path, out: str) -> tuple[dict[str, Any], float, float]:
        """The ``zk-prove`` flow (two batch tasks at once) over ``suppliers``: (summary, wall s, CPU s)."""
        from flows.zk_prove import zk_prove

        return _timed(
            zk_prove,
            suppliers=str(suppliers),
            lists=str(self.lists_path),
            salt_seed=str(seed),
            out=str(self.root / out),
            batch_size=CIRCUIT.batch_size,
            depth=CIRCUIT.depth,
            setup_dir=str(self.setup_dir),
        )

    def document(self, suppliers: Path, seed_hex: str) -> bytes:
        """The whole v3 proof document through the service, as ``cap proof build`` makes it (every batch
        proof comes from the cache the flow filled)."""
        from core import service
        from core.commitments import RootScheme
        from core.modes import EnforcementMode
        from core.proof import proof_file_bytes
        from core.prover import ProofScheme
        from core.zk.proof_v3 import SALT_SEED_FILE

        (self.cfg.layout.keys_dir / SALT_SEED_FILE).write_text(seed_hex)
        policy = self.root / "policy.yml"
        policy.write_text(
            'version: lksg.v1\nname: Production-size v3\ncreated_at: "2026-12-01T00:00:00Z"\nconstraints:\n'
            "  require_at_least_one_ubo: true\n  supplier_count_max: 20000\n  ubo_count_min: 1\n"
            "  require_statement_roots: [sanctions_root]\n  no_sanctioned_suppliers: true\n"
            "  no_sanctioned_ubos: true\n  max_high_risk_suppliers: 50\n  max_tier: 3\n"
        )
        loaded = service.load_policy(policy)
        commitments = service.commit_files(suppliers, self.root / "ubos.csv", RootScheme.MERKLE, self.now)
        manifest = service.make_manifest(self.cfg, commitments, loaded, self.lists, self.now)
        built = service.prove(
            self.cfg, manifest=manifest, loaded=loaded, suppliers=suppliers, ubos=self.root / "ubos.csv",
            lists=self.lists, mode=EnforcementMode.RELAXED, enforce=False, now=self.now,
            scheme=ProofScheme.V3,
        )  # fmt: skip
        return proof_file_bytes(built.proof)


def proving_figures(w: World, sizes: tuple[int, int]) -> tuple[list[Figure], Path]:
    small, large = sizes
    figures = []
    one_k = w.suppliers(small, "suppliers-1k")
    summary, wall, cpu = w.prove_flow(one_k, w.seed("11" * 32), "evidence-1k.json")
    figures.append(
        at_most(
            f"zk_full_prove_{small}_min",
            wall / 60,
            "min",
            10,
            f"{summary['batches']} batches vs {LISTED:,} keys, zk-prove flow, {cpu / 60:.1f} min CPU",
        )
    )
    per_batch = cpu / summary["proved"]
    ten_k = w.suppliers(large, "suppliers-10k")
    summary, wall, cpu = w.prove_flow(ten_k, w.seed("22" * 32), "evidence-10k.json")
    full_wall = wall
    figures += [
        at_most(
            f"zk_full_prove_{large}_min", wall / 60, "min", 60,
            f"{summary['batches']} batches, zk-prove flow (2 at once), {cpu / 60:.1f} min CPU",
        ),
        info(
            "zk_full_batch_cpu_s", cpu / summary["proved"], "s CPU",
            f"per B={CIRCUIT.batch_size} batch ({per_batch:.1f} s at {small})",
        ),
        info(
            "zk_full_prove_10k_8_workers_min", cpu / 8 / 60, "min",
            "on paper: batch CPU x batches / 8 single-core workers (batches are independent)",
        ),
    ]  # fmt: skip
    grown = w.suppliers(large + large // 100, "suppliers-10k-grown")
    summary, wall, cpu = w.prove_flow(grown, w.seed("22" * 32), "evidence-grown.json")
    figures.append(
        at_most(
            "zk_full_incremental_pct",
            100 * wall / full_wall,
            "% of full",
            10,
            f"+{large // 100} suppliers appended: {summary['proved']} of {summary['batches']} batches "
            f"proved, {wall:.0f} s",
        )
    )
    return figures, ten_k


def verify_figures(w: World, ten_k: Path, repeats: int) -> list[Figure]:
    from core import service
    from core.anchors import trust_anchors
    from core.modes import CheckStatus, EnforcementMode
    from core.verify import verify_proof_bytes

    data, wall, cpu = _timed(w.document, ten_k, "22" * 32)
    keyring, trust = service.load_local_keyring(w.cfg), trust_anchors(w.cfg)

    def once() -> Any:
        return verify_proof_bytes(
            data, keyring=keyring, mode=EnforcementMode.STRICT, now=datetime.now(UTC), trust=trust
        )

    t0 = time.perf_counter()
    first = once()  # loads mcl, derives the 75,000-key gap root once (then cached on disk)
    first_s = time.perf_counter() - t0
    times, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        report = once()
        times.append((time.perf_counter() - t0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
    failed = [c.id for c in report.checks if c.status is CheckStatus.FAIL]
    return [
        info("zk_full_document_s", wall, "s", f"v3 document from cached batch proofs, {cpu:.1f} s CPU"),
        at_most("zk_full_proof_10k_kb", len(data) / 1024, "KB", 256, "proof.json; v2: 26.9 MB"),
        info(
            "zk_full_first_verify_s",
            first_s,
            "s",
            f"first verification in a process: gap root of {LISTED:,} keys",
        ),
        at_most(
            "zk_full_verify_10k_ms",
            statistics.median(times),
            "ms",
            100,
            f"in-process, all checks, median wall of {repeats} (mcl: 2 threads); result {report.result.value}"
            + (f" failed {failed}" if failed else "")
            + f"; first {first.result.value}; v2: 942 ms",
        ),
        info("zk_full_verify_10k_cpu_ms", statistics.median(cpus), "ms CPU", "the same verifications, CPU"),
        *http_figures(w, data, repeats),
    ]


def http_figures(w: World, data: bytes, repeats: int) -> list[Figure]:
    import httpx

    from bench.verify_http import start_server, stop_server
    from core.dev_issuer import DevIssuer

    body = b'{"proof":' + data.rstrip() + b"}"
    proc, url = start_server(w.cfg, 1, {"CAP_ZK_ALLOW_DEV": "1", "CAP_ZK_CACHE": str(cache_dir())})
    try:
        token = DevIssuer(w.cfg.layout.dev_issuer_dir).mint(["verify:run"], ttl=3600, now=int(time.time()))
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        latencies, results = [], set()
        with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
            for i in range(repeats * 5 + 1):
                t0 = time.perf_counter()
                r = client.post("/verify", content=body)
                if i:  # the first request pays the gap root and mcl load
                    latencies.append((time.perf_counter() - t0) * 1000)
                results.add((r.status_code, r.json().get("result")))
    finally:
        stop_server(proc)
    return [
        at_most(
            "zk_full_post_verify_p99_ms",
            percentile(latencies, 0.99),
            "ms",
            150,
            f"1 connection, {len(latencies)} requests, p50 {percentile(latencies, 0.5):.0f} ms, "
            f"responses {sorted(results)}",
        )
    ]


def run(smoke: bool = False, verify_only: bool = False) -> list[Figure]:
    """The figures; ``smoke`` checks this script end to end in minutes on the cached development setup of
    a B = 2, depth 7 circuit against 100 listed keys (its figures mean nothing)."""
    global CIRCUIT, LISTED
    os.environ.setdefault("NODE_OPTIONS", "--max-old-space-size=8192")  # setup and proving hold GBs
    if smoke:
        from core.zk.ceremony import dev_setup

        CIRCUIT, LISTED = Circuit(2, 7), 100
        setup_dir, figures = dev_setup(CIRCUIT).directory, []
    else:
        ptau, figures = timing_phase1()
        setup_dir, more = timing_setup(ptau)
        figures += more
    with tempfile.TemporaryDirectory(prefix="bench-zk-full-") as tmp:
        os.environ.setdefault("PREFECT_HOME", str(Path(tmp) / "prefect"))
        w = World(Path(tmp), setup_dir)
        if verify_only:  # the batch proofs of the last full run are in the proof cache
            ten_k = w.suppliers(20 if smoke else 10_000, "suppliers-10k")
        else:
            proved, ten_k = proving_figures(w, (4, 20) if smoke else (1_000, 10_000))
            figures += proved
        figures += verify_figures(w, ten_k, 3 if smoke else 20)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="check the script on a development circuit")
    parser.add_argument(
        "--verify-only", action="store_true", help="re-measure verification (batch proofs from the last run)"
    )
    args = parser.parse_args()
    result = run(args.smoke, args.verify_only)
    print(format_table(result))
    if not args.smoke:
        fresh = {f.name: f.as_json() for f in result}
        kept = json.loads(RESULTS.read_text()) if args.verify_only and RESULTS.is_file() else []
        rows = [fresh.pop(row["name"], row) for row in kept] + list(fresh.values())
        RESULTS.write_text(json.dumps(rows, indent=2) + "\n")
