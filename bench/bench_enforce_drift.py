"""Enforcement over a 10,000-supplier proof and drift analysis: p50/p95 per operation. Prints figures only.

"Enforcement" = evaluating the policy's rules and the verdict over an already loaded dataset, metrics
included. Reported three ways: without re-screening (the count/tier/root rules over the loaded records),
the verifier's rule checks including the re-check of every non-membership proof, and (once) the full build
with screening. Drift = ``detect_drift`` on two snapshots (metered), and with the snapshot taken from the
proof (parse excluded, signature check included). Targets: enforcement p95 ≤ 5 ms, drift p95 ≤ 2 ms.

Run: .venv/bin/python bench/bench_enforce_drift.py [--suppliers N] [--listed N] [--repeat N]; ``run(...)``
returns the figures (``enforce_p95_ms`` is the first row, ``drift_p95_ms`` the two-snapshot row).
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import Figure, at_most, info
from core.commitments import RootScheme, Supplier, Ubo, commit
from core.context import ProverContext, prover_public
from core.drift import detect_drift, snapshot_of_entry, snapshot_of_proof
from core.enforce import record_enforcement, verdict, violations_of
from core.keyring import HistoryEvent, bootstrap_keyring
from core.keys import build_metadata
from core.manifest import PolicyInfo, build_manifest
from core.modes import EnforcementMode
from core.policy.compile import compile_policy
from core.policy.ir import Op
from core.policy.load import load_policy_text
from core.policy.select import active_rule_ids
from core.prover import build_proof
from core.registry import RegistryEntry
from core.rules import evaluate_rule
from core.sanctions import ListFormat, ListSource, RiskLevel, SanctionsEntry
from core.screening import SanctionsList, build_lists
from core.signing import Ed25519Signer
from core.trust import TrustAnchors, TrustedLists
from core.verify import _enforced_rule_checks

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]
POLICY = (
    (ROOT / "examples" / "policy.lksg.v1.yml")
    .read_text()
    .replace("supplier_count_max: 10", "supplier_count_max: 1000000")
)
MODE = EnforcementMode.RELAXED
HIGH_RISK = {"IR": RiskLevel.HIGH, "KP": RiskLevel.HIGH}


def _name(rng: random.Random) -> str:
    return " ".join(
        "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 9))).title() for _ in range(3)
    )


def _percentiles(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    q = statistics.quantiles(times, n=100, method="inclusive")
    return q[49] * 1000, q[94] * 1000


def _setup(n_suppliers: int, n_listed: int):
    rng = random.Random(42)
    suppliers = [
        Supplier(_name(rng) + " GmbH", rng.choice(["DE", "FR", "PL", "SE", "CN"]), rng.randint(1, 3))
        for _ in range(n_suppliers)
    ]
    ubos = [Ubo("Max Mustermann", "1970-05-15", "DE")]
    listed = [
        SanctionsEntry(source="bench", entry_id=str(i), primary_name=_name(rng)) for i in range(n_listed)
    ]
    lists = SanctionsList.from_entries(listed, ["bench"])
    compiled = compile_policy(load_policy_text(POLICY, "bench-policy.yml"))
    c = commit(suppliers, ubos, RootScheme.MERKLE, "2026-01-01T00:00:00Z")
    info = PolicyInfo(name=compiled.policy_id, version="lksg.v1", hash=compiled.policy_hash)
    manifest = build_manifest(
        c, info, subject="LEI-BENCH", created_at="2026-01-01T00:00:00Z", sanctions_root=lists.root_hex
    )
    return suppliers, ubos, lists, compiled, manifest


def _rotated_keyring(old: Ed25519Signer, new: Ed25519Signer):
    """A keyring that records the rotation old → new, so signature drift takes the rotation path."""
    keyring = bootstrap_keyring(build_metadata(old.public_key_b64, "bench", NOW), NOW, "bench")
    entry = keyring.keys[0].model_copy(update={"kid": new.kid, "public_key": new.public_key_b64})
    event = HistoryEvent(
        version=2,
        action="prepare",
        actor="bench",
        at="2026-01-01T00:00:00Z",
        kid=new.kid,
        detail=f"old={old.kid} new={new.kid}",
    )
    return keyring.model_copy(
        update={"version": 2, "keys": (*keyring.keys, entry), "history": (*keyring.history, event)}
    )


def measure(n_suppliers: int = 10_000, n_listed: int = 10_000, repeat: int = 500) -> dict[str, object]:
    """p50/p95 in ms per operation (keys as in the printed table), plus the verdict and drift score."""
    suppliers, ubos, lists, compiled, manifest = _setup(n_suppliers, n_listed)
    old, new = Ed25519Signer.from_seed(b"\x01" * 32), Ed25519Signer.from_seed(b"\x02" * 32)
    keyring = _rotated_keyring(old, new)

    def build(signer: Ed25519Signer):
        return build_proof(
            manifest=manifest,
            ir=compiled.ir,
            suppliers=suppliers,
            ubos=ubos,
            lists=lists,
            high_risk=HIGH_RISK,
            mode=MODE,
            enforce=False,
            signer=signer,
            created_at="2026-01-01T00:00:00Z",
            constraints=compiled.rule_constraints,
        )

    t0 = time.perf_counter()
    built = build(old)
    full_build_ms = (time.perf_counter() - t0) * 1000
    rules = [r for r in compiled.ir.rules if r.op != Op.NON_MEMBERSHIP.value]
    sanctioned = manifest.model_copy(update={"sanctions_root": lists.root_hex})

    def enforce_loaded(public: dict[str, int | bool | str] | None = None) -> None:
        start = time.perf_counter()
        public = public or prover_public(suppliers, ubos, HIGH_RISK)
        ctx = ProverContext(sanctioned, suppliers, ubos, lists, public)
        active = set(active_rule_ids(compiled.ir, public))
        results = [evaluate_rule(r, ctx) for r in rules if r.id in active]
        violations = violations_of(results, compiled.rule_constraints)
        outcome = verdict(violations, MODE)
        record_enforcement((v.constraint for v in violations), outcome, MODE, time.perf_counter() - start)

    known = prover_public(suppliers, ubos, HIGH_RISK)
    rules_p = _percentiles(lambda: enforce_loaded(known), repeat * 4)
    enforce_p = _percentiles(enforce_loaded, repeat)
    source = ListSource(
        path="bench.csv", format=ListFormat.CSV, entries=lists.count, sha3_256="sha3-256:" + "0" * 64
    )
    trusted = TrustedLists(origin="bench", lists=build_lists(lists, [source], NOW, HIGH_RISK))
    trust = TrustAnchors(lists=(trusted,))  # the verifier trusts the lists the proof was screened against
    verify_p = _percentiles(
        lambda: _enforced_rule_checks(built.proof, MODE, trust, NOW), max(10, repeat // 50)
    )

    rotated = build(new).proof
    base_entry = RegistryEntry(
        id="proof_001",
        manifest_hash="x",
        proof_hash="y",
        registered_at="2026-01-01T00:00:00Z",
        signature="",
        public_key=old.public_key_b64,
        kid=old.kid,
        subject="LEI-BENCH",
        policy_hash=manifest.policy.hash,
        ir_hash="",
        company_root=manifest.company_commitment_root,
        supplier_root=manifest.supplier_root,
        ubo_root=manifest.ubo_root,
        result="OK",
        accepted=True,
        proof_json="",
    )
    baseline = snapshot_of_entry(base_entry)
    current = snapshot_of_proof(rotated, "current", keyring).model_copy(
        update={"created_at": "2026-01-02T06:00:00Z"}
    )
    report = detect_drift(baseline, current, keyring=keyring)
    drift_p = _percentiles(lambda: detect_drift(baseline, current, keyring=keyring), repeat * 4)
    build_path_p = _percentiles(
        lambda: detect_drift(
            baseline, snapshot_of_proof(rotated, "c", keyring, signature_valid=True), keyring=keyring
        ),
        repeat * 4,
    )
    snap_p = _percentiles(
        lambda: detect_drift(baseline, snapshot_of_proof(rotated, "c", keyring), keyring=keyring),
        max(10, repeat // 50),
    )

    return {
        "verdict": built.verdict.value,
        "score": report.score,
        "full_build_ms": full_build_ms,
        "enforce": enforce_p,
        "rules": rules_p,
        "verify": verify_p,
        "drift": drift_p,
        "drift_build": build_path_p,
        "drift_snapshot": snap_p,
    }


def run(suppliers: int = 10_000, listed: int = 10_000, repeat: int = 500) -> list[Figure]:
    """Enforcement p50/p95 (target p95 ≤ 5 ms) and drift p50/p95 (target p95 ≤ 2 ms) over ``suppliers``."""
    m = measure(suppliers, listed, repeat)
    note = f"{suppliers:,} suppliers, mode {MODE.value}, {repeat} runs"
    enforce, drift, verify, snap = m["enforce"], m["drift"], m["verify"], m["drift_snapshot"]
    return [
        info("enforce_p50_ms", enforce[0], "ms", note),
        at_most("enforce_p95_ms", enforce[1], "ms", 5, note + "; public inputs + rules + verdict + metrics"),
        info(
            "enforce_verifier_p95_ms", verify[1], "ms", "verifier rule checks incl. non-membership re-check"
        ),
        info("enforce_build_with_screening_ms", m["full_build_ms"], "ms", "once, incl. screening + signing"),
        info("drift_p50_ms", drift[0], "ms", "detect_drift, two snapshots"),
        at_most("drift_p95_ms", drift[1], "ms", 2, "detect_drift, two snapshots, metered"),
        info("drift_with_signature_p95_ms", snap[1], "ms", "incl. snapshot + signature re-check"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--suppliers", type=int, default=10_000)
    parser.add_argument("--listed", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=500)
    args = parser.parse_args()
    m = measure(args.suppliers, args.listed, args.repeat)
    print(
        f"enforcement and drift over {args.suppliers:,} suppliers, sanctions list of {args.listed:,} entries "
        f"(mode {MODE.value}, verdict {m['verdict']}, drift score {m['score']})"
    )
    print(f"{'operation':<58} {'p50 ms':>9} {'p95 ms':>9}")
    rows = [
        ("enforce: public inputs + rules + verdict, no re-screen", m["enforce"]),
        ("  of which rules + verdict + metrics (public inputs known)", m["rules"]),
        ("enforce (verifier): rule checks + non-membership re-check", m["verify"]),
    ]
    for label, (p50, p95) in rows:
        print(f"{label:<58} {p50:9.3f} {p95:9.3f}")
    print(f"{'enforce at build incl. screening (once, with signing)':<58} {m['full_build_ms']:9.1f} {'':>9}")
    drift_p, build_path_p, snap_p = m["drift"], m["drift_build"], m["drift_snapshot"]
    print(f"{'drift: detect_drift on two snapshots (metered)':<58} {drift_p[0]:9.3f} {drift_p[1]:9.3f}")
    print(
        f"{'drift incl. snapshot of the proof, signature known (build)':<58} "
        f"{build_path_p[0]:9.3f} {build_path_p[1]:9.3f}"
    )
    label = "drift incl. snapshot + signature re-check (cap drift files)"
    print(f"{label:<58} {snap_p[0]:9.3f} {snap_p[1]:9.3f}")


if __name__ == "__main__":
    main()
