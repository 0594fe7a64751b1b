"""``cap keys``: generate, list, show, attest, verify chains, rotate and revoke signing keys.

Private keys are never printed; rotation runs through the same service function as the Prefect flow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from core import service
from core.errors import ConfigError
from core.keys import check_kid
from core.modes import CheckStatus
from core.rotation import RotationPlan, make_request
from deployments.cli.output import JsonFlag, emit, err, kv_table, now, out, settings, table
from deployments.errors import EXIT_FAIL, EXIT_INTEGRITY

ROTATION_DEPLOYMENT = "rotate-signing-key/rotate-signing-key"

app = typer.Typer(help="Signing keys (Ed25519, cap-key.v1).", no_args_is_help=True, rich_markup_mode=None)


@app.command("keygen")
def keygen(
    owner: Annotated[str | None, typer.Option(help="Key owner (default CAP_KEY_OWNER or 'Company').")] = None,
    valid_days: Annotated[int, typer.Option(min=1, help="Validity in days.")] = 730,
    as_json: JsonFlag = False,
) -> None:
    """Generate a key pair: <kid>.pem (0600) and <kid>.json in the key directory."""
    config = settings()
    signer = service.keys_overview(config).default_signing_kid
    meta = service.keygen(config, now=now(), owner=owner, valid_days=valid_days)
    emit(as_json, meta, lambda: out.print(kv_table("key generated", meta.model_dump(mode="json"))))
    if signer is None:
        err.print(f"{meta.kid} is the default signer of a new keyring (v1)")
    else:
        err.print(
            f"[yellow]note[/]: {meta.kid} is stored but signs nothing: the default signer stays {signer}. "
            f"To make the new key the signer, rotate to it: cap keys rotate --phase 0 --new-kid {meta.kid}, "
            "then phases 1-3 (docs/runbooks/rotation.md)."
        )


@app.command("list")
def list_keys(
    wide: Annotated[bool, typer.Option(help="Also the owner and the validity start.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Keys of the store and the keyring: default signer, membership, status, validity; keyring history."""
    view = service.keys_overview(settings())
    emit(as_json, view, lambda: _print_keys(view, wide))


def _print_keys(view: service.KeysOverview, wide: bool) -> None:
    if view.keyring_version is None:
        out.print("no keyring yet: `cap keys keygen` starts one")
    else:
        until = f", dual-accept until {view.dual_accept_until}" if view.dual_accept_until else ""
        out.print(
            f"keyring v{view.keyring_version}, {view.mode}{until}; default signer {view.default_signing_kid}"
        )
    headers = (
        "kid",
        "signer",
        "keyring",
        "store",
        "valid to (UTC)",
        *(("owner", "valid from") if wide else ()),
    )
    rows = table(*headers, whole=("kid",))
    for k in view.keys:
        extra = (k.owner or "-", k.valid_from) if wide else ()
        member = k.keyring_status or "not a member"
        rows.add_row(
            k.kid,
            "default" if k.default_signer else "",
            member,
            k.store_status or "-",
            k.valid_to[:10],
            *extra,
        )
    out.print(rows)
    if view.history:
        history = table("v", "action", "actor", "at", "key", whole=("key",), title="keyring history")
        for e in view.history:
            history.add_row(str(e.version), e.action, e.actor, e.at, e.kid or "-")
        out.print(history)


@app.command("show")
def show(kid: str, as_json: JsonFlag = False) -> None:
    """Show one key's public metadata."""
    meta = service.show_key(settings(), kid)
    emit(as_json, meta, lambda: out.print(kv_table(f"key {kid}", meta.model_dump(mode="json"))))


# --- attestations, rotation, revocation (ISSUE 6) ----------------------------------------------


def _kid(value: str) -> str:
    return check_kid(value.strip().lower())


@app.command("attest")
def attest(
    signer: Annotated[str, typer.Option(help="KID of the key that vouches (its private key signs).")],
    subject: Annotated[str, typer.Option(help="KID of the key vouched for.")],
    out_path: Annotated[Path | None, typer.Option("--out", help="Write the attestation here.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Sign a cap-attestation.v1 of SUBJECT by SIGNER (printed as JSON unless --out)."""
    signed = service.attest_key(settings(), _kid(signer), _kid(subject), now())
    if out_path is None:
        emit(True, signed, lambda: None)
        return
    service.write_json(out_path, signed)
    emit(as_json, {"written": str(out_path)}, lambda: out.print(f"attestation written to {out_path}"))


@app.command("verify-chain")
def verify_chain(
    files: Annotated[list[Path], typer.Argument(help="Attestation files, oldest link first.")],
    root: Annotated[str | None, typer.Option(help="Trusted root KID (default: first file's signer).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Verify an attestation chain; exit 4 if a link is broken, 3 if the head key is not acceptable."""
    checked = service.verify_attestation_files(settings(), files, now(), _kid(root) if root else None)
    chain, head = checked.chain, checked.head_acceptance
    rows = {
        "ok": chain.ok,
        "links_checked": chain.links_checked,
        "head_kid": chain.head_kid,
        "failed_index": chain.failed_index,
        "reason": chain.reason,
        "head_key": f"{head.status.value}: {head.reason}" if head else None,
    }
    emit(as_json, checked, lambda: out.print(kv_table("attestation chain", rows)))
    if not chain.ok:
        raise typer.Exit(EXIT_INTEGRITY)
    if head is not None and head.status is CheckStatus.FAIL:
        raise typer.Exit(EXIT_FAIL)


def _confirm(plan: RotationPlan) -> bool:
    err.print(f"[bold]{plan.step.action.value}[/] {plan.pair.old_kid} -> {plan.step.new_kid}")
    for line in plan.diff:
        err.print(f"  {escape(line)}")
    return typer.confirm("apply this step?", default=False, err=True)


def _show_outcome(outcome: service.RotationOutcome) -> None:
    rows = outcome.model_dump(mode="json", exclude={"diff"}, exclude_none=True)
    out.print(kv_table(f"rotation {outcome.action.value}" + (" (dry run)" if outcome.dry_run else ""), rows))
    for line in outcome.diff or ("no change",):
        out.print(f"  {escape(line)}")


@app.command("rotate")
def rotate(
    phase: Annotated[
        int, typer.Option(min=0, max=3, help="0 prepare, 1 dual-accept, 2 sign-switch, 3 decommission.")
    ],
    rollback: Annotated[bool, typer.Option(help="Roll phase 2 back to 1, or 3 back to 2.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Only show the keyring diff.")] = False,
    force: Annotated[bool, typer.Option(help="Skip confirmation, time gate and census.")] = False,
    duration: Annotated[str, typer.Option(help="Dual-accept window, e.g. 168h or 7d.")] = "168h",
    census_window: Annotated[
        str, typer.Option(help="Phase 3 census: old-key entries this recent block.")
    ] = "24h",
    new_kid: Annotated[
        str | None, typer.Option(help="Phase 0: use this stored key instead of a new one.")
    ] = None,
    old_kid: Annotated[
        str | None, typer.Option(help="Old key (default: the current default signer).")
    ] = None,
    via_prefect: Annotated[
        bool, typer.Option(help="Trigger the rotate-signing-key deployment instead.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Apply one phase of the signing-key rotation (docs/runbooks/rotation.md)."""
    options = {
        "phase": phase,
        "rollback": rollback,
        "old_kid": old_kid,
        "new_kid": new_kid,
        "duration": duration,
        "census_window": census_window,
        "force": force,
    }
    request = make_request(**options, actor="cap keys rotate")
    if via_prefect:
        from flows.forms import PhaseChoice  # heavy (prefect): only for --via-prefect

        given = {k: v for k, v in options.items() if v is not None}
        run = _trigger_deployment({**given, "phase": PhaseChoice.of(phase).value, "dry_run": dry_run})
        emit(as_json, run, lambda: out.print(kv_table("rotation triggered", run)))
        return
    outcome = service.rotate_signing_key(settings(), request, now(), dry_run=dry_run, confirm=_confirm)
    emit(as_json, outcome, lambda: _show_outcome(outcome))


def _trigger_deployment(parameters: dict[str, object]) -> dict[str, str]:
    """Start the deployment on the configured Prefect server (needs PREFECT_API_URL)."""
    from prefect.deployments import run_deployment  # heavy import: only for --via-prefect
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise ConfigError(
            "--via-prefect needs a Prefect server: set PREFECT_API_URL (cap serve exports it)",
            field="PREFECT_API_URL",
        )
    run = run_deployment(ROTATION_DEPLOYMENT, parameters=parameters, timeout=0)
    return {"flow_run_id": str(run.id), "state": run.state.name if run.state else "unknown"}


@app.command("anchor")
def anchor(as_json: JsonFlag = False) -> None:
    """Operator: sign the keyring as it is with CAP_OPERATOR_KEY (as a new version), e.g. after a restore."""
    keyring = service.anchor_keyring(settings(), now())
    rows = {"keyring_version": keyring.version, "default_signing_kid": keyring.default_signing_kid}
    emit(as_json, rows, lambda: out.print(kv_table("keyring anchored", rows)))


@app.command("revoke")
def revoke(
    kid: Annotated[str, typer.Argument(help="KID to revoke (terminal; not the default signer).")],
    reason: Annotated[str | None, typer.Option(help="Why, for the keyring history.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Revoke a key in the key store and the keyring (new keyring version); verifiers FAIL its signatures."""
    keyring = service.revoke_signing_key(settings(), _kid(kid), now(), actor="cap keys revoke", reason=reason)
    rows = {
        "kid": kid,
        "keyring_version": keyring.version,
        "mode": keyring.mode.value,
        "default_signing_kid": keyring.default_signing_kid,
    }
    emit(as_json, rows, lambda: out.print(kv_table("key revoked", rows)))
