"""``cap demo``: the whole story on generated example data in a temporary directory.

Keys → commitments → lists → policy → manifest → proof → verify, then what a verifier sees when a
byte is flipped, and what the enforcer does with a supplier that is on a sanctions list. The proof is a
``cap-proof.v3`` under the development setup (NOT FOR PRODUCTION), verified with development vks allowed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from core import service
from core.anchors import install_pin, trust_anchors
from core.commitments import RootScheme
from core.errors import CapError
from core.fsio import atomic_write
from core.modes import EnforcementMode
from core.proof import proof_file_bytes
from core.prover import ProofScheme
from core.sanctions import ListFormat
from core.service import ZkOptions
from core.settings import Settings
from core.verify import summary_line
from core.zk.proof_v3 import SALT_SEED_FILE, dev_depth
from core.zk.service import dev_pin
from core.zk.witness import Circuit
from deployments.cli.output import now, out, styled

SUPPLIERS = """name,jurisdiction,tier
ACME GmbH,DE,1
Global Supply Inc,US,1
Eastern Trading,CN,2
Nordic Materials AB,SE,1
South Asian Textiles,BD,2
"""
UBOS = "name,birthdate,citizenship\nMax Mustermann,1970-05-15,DE\nJane Doe,1985-11-22,US\n"
SANCTIONS = """name,birthdate,nationality
"HOLDING, Petrov Industrial",,RU
Kestrel Maritime Services,,IR
Ivan Sidorov,1961-02-03,RU
"""
DEMO_SALT_SEED = "ab" * 32
"""The demo's salt seed, fixed so repeated demos reuse the cached batch proofs. A real prover's seed is
random, created in ``<data>/keys`` on its first v3 build, and never leaves it."""
HIGH_RISK = "iso_code,risk_level\nIR,HIGH\nKP,HIGH\nRU,HIGH\nCN,MEDIUM\n"
POLICY = """version: lksg.v1
name: LkSG Demo Policy
created_at: "2025-10-25T09:00:00Z"
constraints:
  require_at_least_one_ubo: true
  supplier_count_max: 10
  ubo_count_min: 1
  require_statement_roots: [sanctions_root]
  no_sanctioned_suppliers: true
  no_sanctioned_ubos: true
  max_high_risk_suppliers: 0
  max_tier: 3
notes: "Demo policy: screening, counts, high-risk countries, tiers."
"""


def _step(n: int, text: str) -> None:
    out.print(f"\n[bold cyan]{n}.[/] [bold]{text}[/]")


def _write(d: Path, name: str, text: str) -> Path:
    return atomic_write(d / name, text.encode("utf-8"))


def demo(
    workdir: Annotated[
        Path | None, typer.Option(help="Keep the demo files here (default: a temp dir).")
    ] = None,
) -> None:
    """Run the whole lifecycle on example data and print each step."""
    if workdir is not None:
        _run(workdir)
        return
    with tempfile.TemporaryDirectory(prefix="cap-demo-") as tmp:
        _run(Path(tmp))


def _run(d: Path) -> None:
    cfg = Settings(
        data_dir=d / "var", build_dir=d / "build", subject="LEI-DEMO-5299000J2N45DDNE4Y28", zk_allow_dev=True
    )
    files = {
        n: _write(d, n, t)
        for n, t in (
            ("suppliers.csv", SUPPLIERS),
            ("ubos.csv", UBOS),
            ("sanctions.csv", SANCTIONS),
            ("high_risk.csv", HIGH_RISK),
            ("policy.yml", POLICY),
        )
    }
    when = now()
    out.print(f"[dim]demo directory: {d}[/]")
    _step(1, "generate a signing key (Ed25519, PEM 0600) and start the keyring")
    meta = service.keygen(cfg, now=when)
    out.print(f"   kid {meta.kid}")
    _step(2, "commit to 5 suppliers and 2 UBOs (merkle-blake3-v1)")
    commitments = service.commit_files(files["suppliers.csv"], files["ubos.csv"], RootScheme.MERKLE, when)
    out.print(f"   company root {commitments.company_commitment_root}")
    _step(3, "build the sanctions and high-risk lists and install them as the verifier's trusted lists")
    lists = service.build_lists_file([(files["sanctions.csv"], ListFormat.CSV)], files["high_risk.csv"], when)
    installed = service.install_lists(cfg, lists, when)
    out.print(f"   sanctions root {lists.sanctions_root} over {lists.sanctions_count} keys → {installed}")
    _step(4, "compile the policy to IR and store it")
    loaded = service.load_policy(files["policy.yml"])
    service.store_policy(cfg, loaded, when)
    out.print(
        f"   {loaded.compiled.policy_id}: {len(loaded.compiled.ir.rules)} rules, {loaded.compiled.ir_hash}"
    )
    _step(5, "build the manifest, evaluate every rule, prove the screening in zero knowledge, sign, register")
    out.print("   [yellow]cap-proof.v3 under the development setup: NOT FOR PRODUCTION[/]")
    atomic_write(cfg.layout.keys_dir / SALT_SEED_FILE, DEMO_SALT_SEED.encode(), mode=0o600)
    manifest = service.make_manifest(cfg, commitments, loaded, lists, when)
    built = service.prove(
        cfg,
        manifest=manifest,
        loaded=loaded,
        suppliers=files["suppliers.csv"],
        ubos=files["ubos.csv"],
        lists=lists,
        mode=EnforcementMode.RELAXED,
        enforce=True,
        now=when,
        scheme=ProofScheme.V3,
    )
    proof_path = atomic_write(cfg.build_dir / "proof.json", proof_file_bytes(built.proof))
    out.print(
        f"   verdict {styled(built.verdict.value.upper())} (relaxed); {built.proof.schema_} {proof_path} "
        f"({len(proof_file_bytes(built.proof)):,} bytes, no screening key inside)"
    )
    pinned = install_pin(cfg, dev_pin(Circuit(ZkOptions().batch_size, dev_depth(lists))))
    out.print(f"   verifier pins the development vk {pinned.name} (accepted: development allowed)")
    for v in built.violations:
        out.print(f"   {styled(v.severity.value)} {v.constraint}: {v.message}")
    _verify_steps(cfg, proof_path, when)
    _sanctioned_step(cfg, d, loaded, lists, when)


def _verify_steps(cfg: Settings, proof_path: Path, when: object) -> None:
    _step(6, "verify it as a customer would (strict and relaxed)")
    data = proof_path.read_bytes()
    trust = trust_anchors(cfg)
    for mode in (EnforcementMode.STRICT, EnforcementMode.RELAXED):
        report = service.verify_file(cfg, data, source=str(proof_path), mode=mode, now=now(), trust=trust)
        bad = [c for c in report.checks if c.status.value != "ok"]
        out.print(
            f"   {mode.value}: {styled(report.result.value.upper())}, {len(report.checks)} checks"
            + "".join(f"\n     {styled(c.status.value)} {c.id}: {c.message}" for c in bad)
        )
    out.print(f"   {escape(summary_line(report))}", soft_wrap=True)
    _step(7, "flip one byte of the proof and verify again")
    i = data.index(b'"supplier_count":') + len(b'"supplier_count":')
    forged = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]
    report = service.verify_file(
        cfg, forged, source="forged proof", mode=EnforcementMode.STRICT, now=now(), trust=trust
    )
    failed = [c for c in report.checks if c.status.value == "fail"]
    out.print(
        f"   {styled(report.result.value.upper())}: " + "; ".join(f"{c.id}: {c.message}" for c in failed)
    )


def _sanctioned_step(
    cfg: Settings, d: Path, loaded: service.LoadedPolicy, lists: object, when: object
) -> None:
    _step(8, "add a supplier listed as 'HOLDING, Petrov Industrial' and build with --enforce (strict)")
    changed = _write(d, "suppliers_changed.csv", SUPPLIERS + "Petrov Industrial Holding GmbH,DE,1\n")
    c2 = service.commit_files(changed, d / "ubos.csv", RootScheme.MERKLE, now())
    manifest = service.make_manifest(cfg, c2, loaded, lists, now())  # type: ignore[arg-type]
    try:
        service.prove(
            cfg,
            manifest=manifest,
            loaded=loaded,
            suppliers=changed,
            ubos=d / "ubos.csv",
            lists=lists,
            mode=EnforcementMode.STRICT,
            enforce=True,
            now=now(),
        )  # type: ignore[arg-type]
    except CapError as exc:
        out.print(f"   refused ({exc.code}): {escape(exc.message)}")
    else:
        out.print("   [bold red]unexpected: the proof was not refused[/]")
