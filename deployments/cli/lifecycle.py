"""The proof lifecycle commands: commit → lists → policy → manifest → proof → verify."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core import reverify, service
from core.commitments import Commitments, RootScheme
from core.drift import DriftReport
from core.errors import InvalidInputError
from core.fsio import atomic_write
from core.manifest import Manifest
from core.modes import EnforcementMode
from core.policy.lint import LintMode, has_errors
from core.proof import proof_file_bytes
from core.prover import ProofBuild, ProofScheme
from core.sanctions import ListFormat
from core.screening import load_lists
from deployments.cli.drift import print_drift
from deployments.cli.output import (
    JsonFlag,
    emit,
    err,
    kv_table,
    load_input,
    now,
    out,
    settings,
    styled,
)
from deployments.cli.verify import BaselineOpt, DriftOpt, ModeOpt
from deployments.errors import EXIT_FAIL

lists_app = typer.Typer(help="Sanctions and high-risk lists.", no_args_is_help=True, rich_markup_mode=None)
policy_app = typer.Typer(
    help="Policies: lint and compile to IR.", no_args_is_help=True, rich_markup_mode=None
)
manifest_app = typer.Typer(help="Manifests.", no_args_is_help=True, rich_markup_mode=None)
proof_app = typer.Typer(help="Proofs.", no_args_is_help=True, rich_markup_mode=None)


def _build(name: str) -> Path:
    return settings().build_dir / name


def commit(
    suppliers: Annotated[Path, typer.Option(help="Supplier CSV: name,jurisdiction,tier.")],
    ubos: Annotated[Path, typer.Option(help="UBO CSV: name,birthdate,citizenship.")],
    scheme: Annotated[str, typer.Option(help="merkle (default) or flat (original cap-flat-v1).")] = "merkle",
    out_path: Annotated[Path | None, typer.Option("--out", help="Default build/commitments.json.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Commit to supplier and UBO lists: roots and counts, the leaves stay with you."""
    result = service.commit_files(suppliers, ubos, RootScheme.parse(scheme), now())
    target = service.write_json(out_path or _build("commitments.json"), result)
    emit(
        as_json,
        result,
        lambda: out.print(kv_table(f"commitments → {target}", result.model_dump(mode="json"))),
    )


@lists_app.command("refresh")
def lists_refresh(
    sources: Annotated[
        Path | None, typer.Option(help="cap-list-sources.v1 YAML (default <data>/lists/sources.yaml).")
    ] = None,
    allow_shrink: Annotated[
        bool, typer.Option(help="Install even if more than min_kept of the screening keys would be lost.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Download the lists named in the sources file; install <data>/lists/lists.json if the roots changed."""
    result = service.refresh_lists(settings(), now(), sources_path=sources, allow_shrink=allow_shrink)
    summary = {
        "changed": result.changed,
        "sanctions_root": result.sanctions_root,
        "keys": result.sanctions_count,
        "previous_root": result.previous_root,
        "previous_keys": result.previous_count,
        "jurisdiction_root": result.jurisdiction_root,
        "lists": result.lists_path,
        "sources": [f"{s.format} {s.location} ({s.bytes} bytes, {s.sha3_256})" for s in result.sources],
    }
    emit(as_json, summary, lambda: out.print(kv_table("lists refresh", summary)))


@lists_app.command("build")
def lists_build(
    sanctions: Annotated[
        list[Path] | None, typer.Option(help="Sanctions list in --format (repeatable).")
    ] = None,
    fmt: Annotated[
        ListFormat | None, typer.Option("--format", help="Format of --sanctions: ofac, un or csv.")
    ] = None,
    ofac: Annotated[list[Path] | None, typer.Option(help="OFAC legacy sdn.csv (alt.csv beside it).")] = None,
    un: Annotated[list[Path] | None, typer.Option(help="UN consolidated list XML.")] = None,
    csv: Annotated[list[Path] | None, typer.Option(help="Simple CSV name,birthdate,nationality.")] = None,
    high_risk: Annotated[
        Path | None, typer.Option(help="High-risk countries CSV: iso_code,risk_level.")
    ] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="Default build/lists.json.")] = None,
    install: Annotated[
        bool,
        typer.Option("--install", help="Also install as this data dir's trusted lists (lists/lists.json)."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Build screening keys over every name and alias, the sanctions root and the jurisdiction root."""
    if sanctions and fmt is None:
        raise InvalidInputError("--sanctions needs --format", field="format", expected="ofac, un or csv")
    sources = [(p, fmt) for p in sanctions or [] if fmt is not None]
    sources += [(p, ListFormat.OFAC) for p in ofac or []] + [(p, ListFormat.UN) for p in un or []]
    sources += [(p, ListFormat.CSV) for p in csv or []]
    lists = service.build_lists_file(sources, high_risk, now())
    target = service.write_json(out_path or _build("lists.json"), lists)
    summary = {
        "sanctions_root": lists.sanctions_root,
        "keys": lists.sanctions_count,
        "key_version": lists.version.value,
        "jurisdiction_root": lists.jurisdiction_root,
        "out": str(target),
    }
    if install:
        summary["installed"] = str(service.install_lists(settings(), lists, now()))
    emit(as_json, summary, lambda: out.print(kv_table("lists", summary)))


@lists_app.command("install")
def lists_install(
    path: Annotated[Path, typer.Argument(help="A cap-lists.v1 file (checked before it is installed).")],
    as_json: JsonFlag = False,
) -> None:
    """Install a lists file as this data dir's trusted lists: proofs screened against it verify here."""
    lists = load_lists(path)
    target = service.install_lists(settings(), lists, now())
    summary = {"sanctions_root": lists.sanctions_root, "built": lists.generated_at, "installed": str(target)}
    emit(as_json, summary, lambda: out.print(kv_table("lists installed", summary)))


@policy_app.command("lint")
def policy_lint(
    path: Path,
    strict: Annotated[bool, typer.Option("--strict", help="Strict lint mode (default relaxed).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Lint a policy; exit 3 if any diagnostic is an error."""
    lints = service.lint_policy_file(path, LintMode.STRICT if strict else LintMode.RELAXED)

    def human() -> None:
        for d in lints:
            out.print(
                f"[{'red' if d.level == 'error' else 'yellow'}]{d.level.upper()}[/] {d.code}"
                + (f" [{d.rule_id}]" if d.rule_id else "")
                + f" {d.message}"
            )
        if not lints:
            out.print("[green]no diagnostics[/]")

    emit(as_json, [d.to_dict() for d in lints], human)
    if has_errors(lints):
        raise typer.Exit(EXIT_FAIL)


@policy_app.command("compile")
def policy_compile(
    path: Path,
    out_path: Annotated[
        Path | None, typer.Option("-o", "--out", help="Write the IR here (original pretty form).")
    ] = None,
    persist: Annotated[bool, typer.Option(help="Store in the policy store.")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Lint (strict) and compile a policy to IR v1; print both hashes."""
    loaded = service.load_policy(path)
    c = loaded.compiled
    if out_path is not None:
        atomic_write(out_path, c.ir_pretty())
    if persist:
        service.store_policy(settings(), loaded, now())
    summary = {
        "policy_id": c.policy_id,
        "policy_hash": c.policy_hash,
        "ir_hash": c.ir_hash,
        "rules": len(c.ir.rules),
        "lints": [d.to_dict() for d in c.lints],
    }
    emit(as_json, summary, lambda: out.print(kv_table("compiled", summary)))


@manifest_app.command("build")
def manifest_build(
    commitments: Annotated[Path, typer.Option(help="commitments.json from `cap commit`.")],
    policy: Annotated[Path, typer.Option(help="Policy YAML (v1 or v2).")],
    lists: Annotated[Path | None, typer.Option(help="lists.json from `cap lists build`.")] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="Default build/manifest.json.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Bind commitments to a policy (and the list roots) in an unsigned manifest."""
    c = load_input(commitments, Commitments, "commitments")
    manifest = service.make_manifest(
        settings(), c, service.load_policy(policy), load_lists(lists) if lists else None, now()
    )
    target = service.write_json(out_path or _build("manifest.json"), manifest)
    emit(
        as_json,
        manifest,
        lambda: out.print(
            kv_table(
                f"manifest → {target}",
                manifest.model_dump(
                    mode="json",
                    exclude_none=True,
                    include={"subject", "company_commitment_root", "policy", "sanctions_root"},
                ),
            )
        ),
    )


@proof_app.command("build")
def proof_build(
    manifest: Annotated[Path, typer.Option(help="manifest.json from `cap manifest build`.")],
    policy: Annotated[Path, typer.Option(help="The manifest's policy (YAML).")],
    suppliers: Annotated[Path, typer.Option(help="The supplier CSV the manifest commits to.")],
    ubos: Annotated[Path, typer.Option(help="The UBO CSV the manifest commits to.")],
    sanctions: Annotated[Path | None, typer.Option(help="Sanctions list (with --format).")] = None,
    fmt: Annotated[ListFormat | None, typer.Option("--format", help="ofac, un or csv.")] = None,
    lists: Annotated[Path | None, typer.Option(help="lists.json instead of --sanctions.")] = None,
    high_risk: Annotated[Path | None, typer.Option(help="High-risk countries CSV.")] = None,
    enforce: Annotated[
        bool, typer.Option("--enforce", help="Refuse the proof if the verdict is FAIL.")
    ] = False,
    mode: ModeOpt = EnforcementMode.STRICT,
    drift_detect: DriftOpt = False,
    baseline: BaselineOpt = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="Default build/proof.json.")] = None,
    scheme: Annotated[
        ProofScheme | None,
        typer.Option(
            help="v3: screening proved in zero knowledge (default, CAP_PROOF_SCHEME); v2: not confidential."
        ),
    ] = None,
    zk_setup: Annotated[
        Path | None,
        typer.Option(
            help="v3: finished setup (default CAP_ZK_SETUP, else the dev setup: NOT FOR PRODUCTION)."
        ),
    ] = None,
    zk_batch_size: Annotated[int, typer.Option(min=1, help="v3 development setup: suppliers per proof.")] = 2,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate the policy on the real data, prove (v3), sign, register; exit 3 if refused (--enforce)."""
    when, m = now(), load_input(manifest, Manifest, "manifest")
    base = reverify.subject_baseline(settings(), m.subject, baseline) if drift_detect else None
    loaded_lists = service.read_lists(lists, sanctions, fmt, high_risk, when)
    chosen = scheme or ProofScheme(settings().proof_scheme)
    if chosen is ProofScheme.V3 and zk_setup is None and settings().zk_setup_dir is None:
        err.print(
            "[bold yellow]v3 under the development setup: NOT FOR PRODUCTION (anyone can forge under it)[/]"
        )
    built = service.prove(
        settings(),
        manifest=m,
        loaded=service.load_policy(policy),
        suppliers=suppliers,
        ubos=ubos,
        lists=loaded_lists,
        mode=mode,
        enforce=enforce,
        now=when,
        scheme=chosen,
        zk=service.ZkOptions(setup_dir=zk_setup, batch_size=zk_batch_size),
    )
    target = out_path or _build("proof.json")
    atomic_write(target, proof_file_bytes(built.proof))
    summary = {
        "proof": str(target),
        "verdict": built.verdict.value.upper(),
        "scheme": built.proof.schema_,
        "mode": mode.value,
        "violations": [v.model_dump(mode="json", exclude={"evidence"}) for v in built.violations],
    }
    if drift_detect:
        summary["drift"] = reverify.proof_drift(
            settings(), built.proof, base, source=str(target), signature_valid=True
        )  # signed just now by our own key
    emit(as_json, summary, lambda: _print_build(built, target, mode, summary))


def _print_build(built: ProofBuild, target: Path, mode: EnforcementMode, summary: dict[str, object]) -> None:
    out.print(
        f"{built.proof.schema_} → {target}  verdict {styled(built.verdict.value.upper())} ({mode.value})"
    )
    for v in built.violations:
        out.print(f"  {styled(v.severity.value)} {v.constraint}: {v.message}")
    if "drift" in summary:
        drift = summary["drift"]
        print_drift(drift if isinstance(drift, DriftReport) else None)
