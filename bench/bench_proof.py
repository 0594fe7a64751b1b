"""Proof build and verify for 10,000 suppliers against a 50,000-entry sanctions list. Prints figures only.

Run: .venv/bin/python bench/bench_proof.py [--suppliers N] [--listed N]; ``run(...)`` returns the figures.
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import Figure, info
from core.commitments import RootScheme, Supplier, Ubo, commit
from core.keyring import bootstrap_keyring
from core.keys import build_metadata
from core.manifest import PolicyInfo, build_manifest
from core.modes import EnforcementMode
from core.policy.compile import compile_policy
from core.policy.load import load_policy_text
from core.proof import parse_proof_bytes, proof_file_bytes
from core.prover import build_proof
from core.sanctions import ListFormat, ListSource, RiskLevel, SanctionsEntry
from core.screening import ListsFile, SanctionsList, build_lists
from core.signing import Ed25519Signer
from core.trust import TrustAnchors, TrustedLists, lists_info
from core.verify import verify_proof, verify_proof_bytes

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HIGH_RISK = {"IR": RiskLevel.HIGH}
POLICY = Path(__file__).resolve().parents[1] / "examples" / "policy.lksg.v1.yml"
BENCH_POLICY = POLICY.read_text().replace("supplier_count_max: 10", "supplier_count_max: 1000000")


def _name(rng: random.Random) -> str:
    return " ".join(
        "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 9))).title() for _ in range(3)
    )


def world(n_suppliers: int, n_listed: int, built_at: datetime = NOW):
    rng = random.Random(42)
    suppliers = [
        Supplier(_name(rng) + " GmbH", rng.choice(["DE", "FR", "PL", "SE"]), rng.randint(1, 3))
        for _ in range(n_suppliers)
    ]
    ubos = [Ubo("Max Mustermann", "1970-05-15", "DE")]
    entries = [
        SanctionsEntry(source="bench", entry_id=str(i), primary_name=_name(rng)) for i in range(n_listed)
    ]
    t0 = time.perf_counter()
    lists = SanctionsList.from_entries(entries, ["bench"])
    build_s = time.perf_counter() - t0
    compiled = compile_policy(load_policy_text(BENCH_POLICY, "bench-policy.yml"))
    c = commit(suppliers, ubos, RootScheme.MERKLE, "2026-01-01T00:00:00Z")
    info = PolicyInfo(name=compiled.policy_id, version="lksg.v1", hash=compiled.policy_hash)
    doc = bench_lists_file(lists, built_at)
    manifest = build_manifest(
        c,
        info,
        subject="LEI-BENCH",
        created_at="2026-01-01T00:00:00Z",
        sanctions_root=lists.root_hex,
        jurisdiction_root=doc.jurisdiction_root,
        lists=lists_info(doc),
    )
    return suppliers, ubos, lists, compiled, manifest, build_s


def bench_lists_file(lists: SanctionsList, built_at: datetime = NOW) -> ListsFile:
    """The lists document a verifier installs to trust the bench proofs (``built_at``: their build time)."""
    source = ListSource(
        path="bench.csv", format=ListFormat.CSV, entries=lists.count, sha3_256="sha3-256:" + "00" * 32
    )
    return build_lists(lists, [source], built_at, HIGH_RISK)


def _prove(suppliers, ubos, lists, compiled, manifest, signer: Ed25519Signer) -> bytes:
    """Screen, evaluate every rule, sign: the stored proof bytes."""
    built = build_proof(
        manifest=manifest,
        ir=compiled.ir,
        suppliers=suppliers,
        ubos=ubos,
        lists=lists,
        high_risk=HIGH_RISK,
        mode=EnforcementMode.STRICT,
        enforce=False,
        signer=signer,
        created_at="2026-01-01T00:00:00Z",
    )
    return proof_file_bytes(built.proof)


def signed_proof_bytes(
    n_suppliers: int, n_listed: int, signer: Ed25519Signer, built_at: datetime = NOW
) -> tuple[bytes, ListsFile]:
    """The stored bytes of a proof over ``n_suppliers`` suppliers screened against ``n_listed`` entries
    (lists built at ``built_at``), and the lists a verifier must install to trust it."""
    suppliers, ubos, lists, compiled, manifest, _ = world(n_suppliers, n_listed, built_at)
    return _prove(suppliers, ubos, lists, compiled, manifest, signer), bench_lists_file(lists, built_at)


def measure(n_suppliers: int = 10_000, n_listed: int = 50_000, repeat: int = 3) -> dict[str, float]:
    suppliers, ubos, lists, compiled, manifest, list_s = world(n_suppliers, n_listed)
    signer = Ed25519Signer.from_seed(b"\x01" * 32)
    keyring = bootstrap_keyring(build_metadata(signer.public_key_b64, "bench", NOW), NOW, "bench")
    trust = TrustAnchors(lists=(TrustedLists(origin="bench", lists=bench_lists_file(lists)),))
    builds, verifies, parses = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        data = _prove(suppliers, ubos, lists, compiled, manifest, signer)
        builds.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        proof = parse_proof_bytes(data)
        parses.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        report = verify_proof(proof, keyring=keyring, mode=EnforcementMode.STRICT, now=NOW, trust=trust)
        verifies.append(time.perf_counter() - t0)
    assert report.result.value == "ok", [c for c in report.checks if c.status.value != "ok"]
    total = verify_proof_bytes(data, keyring=keyring, mode=EnforcementMode.STRICT, now=NOW, trust=trust)
    assert total.result.value == "ok"
    return {
        "keys": lists.count,
        "list_build_ms": list_s * 1000,
        "build_ms": statistics.median(builds) * 1000,
        "size_mb": len(data) / 1e6,
        "parse_ms": statistics.median(parses) * 1000,
        "verify_ms": statistics.median(verifies) * 1000,
    }


def run(suppliers: int = 10_000, listed: int = 50_000, repeat: int = 3) -> list[Figure]:
    """Proof build (screen + evaluate + sign) and full verify for ``suppliers`` suppliers; no SPEC target."""
    m = measure(suppliers, listed, repeat)
    note = f"{suppliers:,} suppliers, {listed:,}-entry list, median of {repeat}"
    return [
        info("proof_build_10k_ms", m["build_ms"], "ms", note),
        info("proof_verify_10k_ms", m["verify_ms"], "ms", note + ", all checks incl. non-membership"),
        info("proof_parse_10k_ms", m["parse_ms"], "ms", "parse + canonical check"),
        info("proof_size_10k_mb", m["size_mb"], "MB", note),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--suppliers", type=int, default=10_000)
    parser.add_argument("--listed", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    m = measure(args.suppliers, args.listed, args.repeat)
    print(
        f"proof over {args.suppliers:,} suppliers, sanctions list of {args.listed:,} entries "
        f"({m['keys']:,} keys)"
    )
    print(f"  sanctions list build      {m['list_build_ms']:9.1f} ms")
    print(f"  proof build (screen+sign) {m['build_ms']:9.1f} ms (median of {args.repeat})")
    print(f"  proof size                {m['size_mb']:9.2f} MB")
    print(f"  parse + canonical check   {m['parse_ms']:9.1f} ms")
    print(f"  verify (all checks)       {m['verify_ms']:9.1f} ms")


if __name__ == "__main__":
    main()
