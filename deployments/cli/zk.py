"""``cap zk``: the trusted-setup ceremony for cap-proof.v3 circuits (docs/runbooks/zk_setup.md), pinning, and
auditor openings of one supplier (`open`, `check-opening`).

Each command calls one function of :mod:`core.zk.service`. Contribution randomness never leaves the process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.anchors import install_pin
from core.screening import load_lists
from core.zk import service
from core.zk.proof_v3 import dev_depth
from core.zk.witness import Circuit
from deployments.cli.output import JsonFlag, emit, err, kv_table, out, settings
from deployments.errors import EXIT_FAIL

app = typer.Typer(
    help="Zero-knowledge screening: circuits and trusted setup (cap-proof.v3).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Suppliers per proof (power of two).")]
Depth = Annotated[int, typer.Option("--depth", min=1, max=32, help="Sanctions gap-tree depth.")]
SetupDir = Annotated[Path, typer.Argument(help="Setup directory (holds setup.json).")]


@app.command("setup")
def setup(
    ptau: Annotated[Path | None, typer.Option(help="Prepared phase-1 file from a public ceremony.")] = None,
    dev: Annotated[
        bool, typer.Option("--dev", help="Local phase 1 + beacon only: NOT FOR PRODUCTION.")
    ] = False,
    batch_size: BatchSize = 2,
    depth: Depth = 3,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Setup directory (default in the cache).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Compile the circuit and start phase 2 from --ptau (checked), or build the --dev setup."""
    circuit = Circuit(batch_size, depth)
    if dev == (ptau is not None):
        raise typer.BadParameter("give exactly one of --ptau FILE or --dev")
    if dev:
        s = service.setup_dev(circuit)
        info = {"directory": str(s.directory), "vk_hash": s.vk.vk_hash, "production": False}
        err.print("[bold yellow]development setup: NOT FOR PRODUCTION (anyone can forge proofs under it)[/]")
    else:
        assert ptau is not None
        info = service.setup_from_ptau(circuit, ptau, out_dir)
    emit(as_json, info, lambda: out.print(kv_table(f"setup {circuit.name}", info)))


@app.command("contribute")
def contribute(
    directory: SetupDir,
    name: Annotated[str, typer.Option(help="Who contributes (recorded in the transcript).")],
    as_json: JsonFlag = False,
) -> None:
    """Add one phase-2 contribution with fresh randomness; publish the printed hash."""
    digest = service.contribute(directory, name)
    emit(as_json, {"contribution_hash": digest}, lambda: out.print(f"contribution hash: {digest}"))


@app.command("beacon")
def beacon(
    directory: SetupDir,
    beacon_hex: Annotated[
        str, typer.Option("--beacon", help="Public beacon value (hex), announced in advance.")
    ],
    iterations: Annotated[int, typer.Option(min=10, max=63, help="log2 of the beacon hash iterations.")] = 10,
    as_json: JsonFlag = False,
) -> None:
    """Close phase 2 with a public beacon and export the verifying key."""
    transcript = service.beacon(directory, beacon_hex, iterations)
    emit(as_json, transcript, lambda: out.print(f"vk hash: {transcript['final']['vk_hash']}"))


@app.command("verify-setup")
def verify_setup(
    directory: SetupDir,
    ptau: Annotated[
        Path | None, typer.Option(help="Phase-1 file (default: the one in the transcript).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-check every contribution, the final key and the exported vk; exit 3 if anything does not verify."""
    transcript = service.verify_setup(directory, ptau)
    emit(
        as_json,
        transcript,
        lambda: out.print(
            f"setup ok: {len(transcript['steps'])} steps, vk hash {transcript['final']['vk_hash']}"
            + ("" if transcript["phase1"]["production"] else "  [bold yellow](NOT FOR PRODUCTION)[/]")
        ),
    )


@app.command("pin")
def pin(
    directory: Annotated[Path | None, typer.Argument(help="Finished setup directory to trust.")] = None,
    dev: Annotated[
        bool, typer.Option("--dev", help="Pin the development setup: NOT FOR PRODUCTION.")
    ] = False,
    batch_size: BatchSize = 2,
    depth: Depth = 3,
    lists: Annotated[
        Path | None, typer.Option(help="--dev: the circuit `cap proof build` picks for these lists.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Pin a verifying key in this data dir: `cap verify` and `POST /verify` accept v3 proofs under it."""
    if dev == (directory is not None):
        raise typer.BadParameter("give exactly one of DIRECTORY or --dev")
    if lists is not None:
        depth = dev_depth(load_lists(lists))
    pinned = service.dev_pin(Circuit(batch_size, depth)) if dev else service.pin(directory)  # type: ignore[arg-type]
    target = install_pin(settings(), pinned)
    info = {
        "pin": str(target),
        "vk_hash": pinned.vk_hash,
        "circuit": pinned.circuit,
        "production": pinned.production,
    }
    if not pinned.production:
        err.print("[bold yellow]development vk: accepted only with --allow-dev-zk / CAP_ZK_ALLOW_DEV=1[/]")
    emit(as_json, info, lambda: out.print(kv_table("pinned", info)))


@app.command("verify")
def verify(
    evidence: Annotated[Path, typer.Argument(help="v3 screening evidence JSON.")],
    commitment: Annotated[Path, typer.Option(help="The signed screening commitment JSON.")],
    setup_dirs: Annotated[list[Path], typer.Option("--setup", help="Pinned setup directory (repeatable).")],
    gap_roots: Annotated[
        list[str], typer.Option("--gap-root", help="Trusted sanctions gap root (repeatable).")
    ],
    high_risk: Annotated[
        list[str] | None,
        typer.Option(
            "--high-risk", help="High-risk jurisdiction the proofs count against (repeatable; none for UBOs)."
        ),
    ] = None,
    allow_dev: Annotated[
        bool, typer.Option("--allow-dev", help="Accept development vks (tests only).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Verify v3 screening evidence; exit 3 naming every failed rule."""
    result = service.check_evidence(
        evidence, commitment, setup_dirs, gap_roots, high_risk or [], allow_development=allow_dev
    )
    report = {"ok": result.ok, "failures": [{"code": c.value, "message": m} for c, m in result.failures]}
    emit(
        as_json,
        report,
        lambda: out.print("ok" if result.ok else "\n".join(f"FAIL {c}: {m}" for c, m in result.failures)),
    )
    if not result.ok:
        raise typer.Exit(EXIT_FAIL)


ProofArg = Annotated[Path, typer.Option("--proof", help="The cap-proof.v3 (proof.json).")]


@app.command("open")
def open_(
    proof: ProofArg,
    suppliers: Annotated[Path, typer.Option(help="The supplier CSV the proof commits to.")],
    row: Annotated[int | None, typer.Option(min=0, help="Row (0-based, CSV order) to open.")] = None,
    name: Annotated[str | None, typer.Option(help="Exact supplier name to open.")] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="Default build/opening.json.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Prover: open ONE committed supplier for an auditor (its record, salt and both paths; nothing else)."""
    from core.commitments import read_suppliers
    from core.fsio import atomic_write
    from core.proof import parse_proof_bytes
    from core.zk.proof_v3 import SALT_SEED_FILE
    from core.zk.prover import read_salt_seed
    from deployments.cli.output import read_input

    cfg = settings()
    document = service.open_supplier_row(
        parse_proof_bytes(read_input(proof), str(proof)),
        read_suppliers(suppliers),
        read_salt_seed(cfg.layout.keys_dir / SALT_SEED_FILE),
        row=row,
        name=name,
    )
    target = out_path or cfg.build_dir / "opening.json"
    atomic_write(target, (document.model_dump_json(by_alias=True, indent=2) + "\n").encode())
    info = {"opening": str(target), "row": document.opening.row, "name": document.opening.name}
    emit(as_json, info, lambda: out.print(kv_table("opened one supplier", info)))


@app.command("check-opening")
def check_opening(
    opening: Annotated[Path, typer.Argument(help="opening.json from `cap zk open`.")],
    proof: ProofArg,
    as_json: JsonFlag = False,
) -> None:
    """Auditor: check an opening against the proof's BLAKE3 and zero-knowledge commitments; exit 3 if not."""
    from core.proof import parse_proof_bytes
    from core.zk.opening import OpeningDocument
    from deployments.cli.output import load_input, read_input

    document = load_input(opening, OpeningDocument, "opening")
    failures = service.check_supplier_opening(parse_proof_bytes(read_input(proof), str(proof)), document)
    opened = document.opening
    report = {"ok": not failures, "row": opened.row, "name": opened.name, "failures": failures}
    emit(
        as_json,
        report,
        lambda: out.print(
            f"ok: row {document.opening.row} ({document.opening.name}) is in both commitments"
            if not failures
            else "\n".join(f"FAIL {f}" for f in failures)
        ),
    )
    if failures:
        raise typer.Exit(EXIT_FAIL)
