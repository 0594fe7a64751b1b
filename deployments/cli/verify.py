"""``cap verify``: one proof against the keyring, the trust anchors and the local registry.

Its own module, importing only what verifying needs (``core.service_verify``, not ``core.service``):
``cap verify`` is the command people run most, in a fresh process each time (docs/performance.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.anchors import trust_anchors
from core.manifest import Manifest
from core.modes import CheckStatus, EnforcementMode
from core.proof import PROOF_SCHEMA
from core.service_verify import verify_file
from core.verify import Report, summary_line
from deployments.cli.output import JsonFlag, emit, load_input, now, out, read_input, settings, styled
from deployments.cli.output import table as output_table
from deployments.errors import EXIT_FAIL, EXIT_INTEGRITY

ModeOpt = Annotated[EnforcementMode, typer.Option("--enforce-mode", help="strict, relaxed or audit.")]
DriftOpt = Annotated[bool, typer.Option("--drift-detect", help="Score drift against a baseline.")]
BaselineOpt = Annotated[
    Path | None,
    typer.Option(
        help="Drift baseline proof/manifest (default: the last accepted registry entry of the subject)."
    ),
]


def _print_report(report: Report) -> None:
    # every column folds: a key id or a root inside a message is never cut to an ellipsis
    table = output_table(
        "check",
        "kind",
        "status",
        "message",
        title=f"result {styled(report.result.value.upper())}",
        title_justify="left",
    )
    for c in report.checks:
        table.add_row(c.id, c.kind.value, styled(c.status.value), c.message)
    out.print(table)
    if report.scheme == PROOF_SCHEMA:
        out.print(
            f"{PROOF_SCHEMA}: [bold yellow]not confidential[/] (discloses each screened name's key, ADR 0004)"
        )
    out.print(summary_line(report), soft_wrap=True)


def verify(
    proof: Annotated[Path, typer.Option(help="proof.json to verify.")],
    manifest: Annotated[Path | None, typer.Option(help="Also check this manifest matches the proof.")] = None,
    keyring: Annotated[Path | None, typer.Option(help="Keyring with the prover's public keys.")] = None,
    mode: ModeOpt = EnforcementMode.STRICT,
    lists: Annotated[
        list[Path] | None,
        typer.Option(help="Also trust this lists.json (repeatable); the installed lists are always trusted."),
    ] = None,
    policy: Annotated[
        list[Path] | None, typer.Option(help="Require the proof's policy to be this one (repeatable).")
    ] = None,
    expect_policy_hash: Annotated[
        list[str] | None, typer.Option(help="Require this policy hash (repeatable).")
    ] = None,
    max_list_age_days: Annotated[
        int | None,
        typer.Option(min=1, help="Refuse lists built longer ago (default CAP_MAX_LIST_AGE_DAYS or 14)."),
    ] = None,
    zk_setup: Annotated[
        list[Path] | None,
        typer.Option(help="v3: also pin this setup's vk (repeatable); pins from `cap zk pin` always count."),
    ] = None,
    allow_dev_zk: Annotated[
        bool,
        typer.Option(
            "--allow-dev-zk", help="v3: accept development vks (NOT FOR PRODUCTION; CAP_ZK_ALLOW_DEV)."
        ),
    ] = False,
    drift_detect: DriftOpt = False,
    baseline: BaselineOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Verify a proof: signature, key status, hashes, roots, trusted lists, every rule, sanctions evidence."""
    data = read_input(proof)
    updates: dict[str, object] = {"max_list_age_days": max_list_age_days} if max_list_age_days else {}
    cfg = settings().model_copy(update=updates | ({"zk_allow_dev": True} if allow_dev_zk else {}))
    pins = []
    if zk_setup:
        from core.zk.service import pin  # the setup tooling only when a setup is named

        pins = [pin(d) for d in zk_setup]
    trust = trust_anchors(
        cfg, lists=lists or [], policies=policy or [], policy_hashes=expect_policy_hash or [], vks=pins
    )
    report = verify_file(
        cfg,
        data,
        source=str(proof),
        mode=mode,
        now=now(),
        trust=trust,
        keyring_path=keyring,
        manifest=load_input(manifest, Manifest, "manifest") if manifest else None,
    )
    if drift_detect:
        from core import reverify  # drift scoring: only with --drift-detect

        report = reverify.add_drift(cfg, report, data, source=str(proof), baseline=baseline)
    emit(as_json, report, lambda: _print_report(report))
    if report.result is CheckStatus.FAIL:
        raise typer.Exit(EXIT_INTEGRITY if report.integrity_failed else EXIT_FAIL)
