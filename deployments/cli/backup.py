"""``cap backup``, ``cap backups list|prune`` and ``cap restore``: thin calls into :mod:`core.backup.service`.

These commands have their own exit codes (docs/runbooks/restore.md), mapped once in :func:`exit_code`:
0 ok, 2 usage or bad input, 3 backup not found, 4 integrity or signature mismatch (also a refused
keyring rollback), 5 restore target or swap failure (or another restore running), 6 smoke checks
failed and the previous state was swapped back. Progress goes to stderr; stdout stays parseable.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from core import service
from core.backup import BACKUP_PHASES
from core.backup import service as backups
from core.backup.restore import KeyringChoice, RestoreReceipt, StepName
from core.backup.retention import KeepRules
from core.backup.scan import PiiMode
from core.errors import (
    CapError,
    ConfigError,
    ConflictError,
    InvalidInputError,
    KeyError_,
    NotFoundError,
    VerificationError,
)
from deployments.cli.output import JsonFlag, emit, err, kv_table, now, out, settings, table
from deployments.errors import EXIT_INPUT, EXIT_INTERNAL, HINTS

EXIT_NOT_FOUND = 3
EXIT_INTEGRITY = 4
EXIT_TARGET = 5
EXIT_ROLLED_BACK = 6

_BY_CODE = {
    "restore_smoke_failed": EXIT_ROLLED_BACK,
    "restore_target_failed": EXIT_TARGET,
    "restore_target_invalid": EXIT_TARGET,
}
_BY_KIND: tuple[tuple[type[CapError], int], ...] = (
    (NotFoundError, EXIT_NOT_FOUND),
    (VerificationError, EXIT_INTEGRITY),  # IntegrityError, bad signature, keyring_rollback
    (ConflictError, EXIT_TARGET),
    (InvalidInputError, EXIT_INPUT),
    (ConfigError, EXIT_INPUT),
    (KeyError_, EXIT_INPUT),
)

backups_app = typer.Typer(
    help="Stored backups: list them, apply retention.", no_args_is_help=True, rich_markup_mode=None
)

FromOption = Annotated[
    str | None,
    typer.Option("--from", help="Store URI: file://DIR or s3://bucket/prefix (default var/backups)."),
]


def exit_code(exc: CapError) -> int:
    """The exit code of a backup/restore failure (see the module docstring)."""
    if exc.code in _BY_CODE:
        return _BY_CODE[exc.code]
    return next((code for kind, code in _BY_KIND if isinstance(exc, kind)), EXIT_INTERNAL)


@contextlib.contextmanager
def _exit_codes() -> Iterator[None]:
    try:
        yield
    except CapError as exc:
        if "--json" in sys.argv:
            print(json.dumps(exc.to_dict(), ensure_ascii=False, default=str), file=sys.stderr)
        err.print(f"[bold red]error[/] \\[{exc.code}]: {escape(exc.diagnostics())}", highlight=False)
        if exc.code in HINTS:
            err.print(f"hint: {escape(HINTS[exc.code])}", highlight=False)
        raise typer.Exit(exit_code(exc)) from exc


def _progress() -> Progress:
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    return Progress(*columns, TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal)


def backup(
    to: Annotated[
        str | None, typer.Option("--to", help="Store URI (default file://<data dir>/backups).")
    ] = None,
    encrypt: Annotated[
        bool, typer.Option(help="AES-256-GCM under CAP_BACKUP_KEY_FILE's master key.")
    ] = False,
    pii: Annotated[
        PiiMode, typer.Option(help="PII findings: refuse the backup or only warn.")
    ] = PiiMode.REFUSE,
    as_json: JsonFlag = False,
) -> None:
    """Back up the data dir (never private keys); prints the backup id."""
    with _exit_codes(), _progress() as bar:
        task = bar.add_task("snapshot", total=len(BACKUP_PHASES))

        def advance(phase: str) -> None:
            bar.update(task, advance=1, description=phase)

        result = backups.backup_now(
            settings(), now=now(), to_uri=to, encrypt=encrypt, pii=pii, progress=advance
        )
    m = result.manifest
    for finding in result.scan.findings:
        err.print(
            f"[yellow]warning[/]: {finding.kind.value} in {escape(finding.file)} at {escape(finding.field)}"
        )
    err.print(f"{m.total_files} files, archive {m.archive.size_bytes} bytes in {result.store_uri}")
    summary = {"backup_id": m.backup_id, "store": result.store_uri, "manifest": m, "scan": result.scan}
    emit(as_json, summary, lambda: print(m.backup_id))


@backups_app.command("list")
def list_backups(from_uri: FromOption = None, as_json: JsonFlag = False) -> None:
    """List the backups in a store."""
    with _exit_codes():
        listing = backups.list_backups(settings(), from_uri)

    def human() -> None:
        rows = table("backup id", "created", "archive bytes", "readable", whole=("backup id",))
        for b in listing:
            rows.add_row(
                b.backup_id, b.created_at or "-", str(b.size_bytes or "-"), "yes" if b.readable else "NO"
            )
        out.print(rows)

    emit(as_json, listing, human)


@backups_app.command("prune")
def prune(
    from_uri: FromOption = None,
    keep_last: Annotated[int, typer.Option(min=0, help="Keep the N newest backups.")] = 0,
    keep_daily: Annotated[int, typer.Option(min=0, help="Keep the newest backup of each of N days.")] = 0,
    keep_weekly: Annotated[
        int, typer.Option(min=0, help="Keep the newest backup of each of N ISO weeks.")
    ] = 0,
    dry_run: Annotated[bool, typer.Option(help="Only show what would be deleted.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete the backups no keep-rule keeps (with no rule set, nothing is deleted)."""
    rules = KeepRules(keep_last=keep_last, keep_daily=keep_daily, keep_weekly=keep_weekly)
    with _exit_codes():
        plan = backups.prune(settings(), rules, from_uri=from_uri, dry_run=dry_run)

    def human() -> None:
        verb = "would delete" if dry_run else "deleted"
        for bid, why in sorted(plan.keep.items()):
            out.print(f"keep    {bid}  ({', '.join(why)})")
        for bid in plan.delete:
            out.print(f"{verb}  {bid}")
        for bid in plan.unreadable:
            out.print(f"[yellow]unreadable[/] {bid} (never deleted automatically)")

    emit(as_json, plan, human)


def _show_receipt(receipt: RestoreReceipt) -> None:
    kind = "verified" if receipt.verify_only else "restored"
    rows = {
        "live dir": receipt.live_dir,
        "at": receipt.restored_at,
        "recovered first": receipt.recovered_first.value,
    }
    if receipt.replica is not None:
        rows["replica"] = receipt.replica.url
        rows["requested point"] = receipt.replica.requested or "latest"
        rows["point reached"] = receipt.replica.reached or "unknown"
    out.print(kv_table(f"{kind} {receipt.backup_id}", rows))
    steps = table("#", "step", "status", "ms", "checks")
    for s in receipt.steps:
        steps.add_row(
            str(s.number), s.name.value, s.status, str(s.duration_ms), "; ".join(c.id for c in s.checks)
        )
    out.print(steps)
    for c in (c for s in receipt.steps for c in s.checks if c.status == "warn"):
        rollback = " (a keyring rollback)" if c.id == "keyring" and "live" in c.message else ""
        err.print(f"[yellow]warning[/] {c.id}: {escape(c.message)}{rollback}")


def restore(
    backup_id: Annotated[
        str | None, typer.Option("--backup", help="The backup id (see `cap backups list`).")
    ] = None,
    from_uri: FromOption = None,
    from_replica: Annotated[
        str | None,
        typer.Option(
            help="Point-in-time restore from a Litestream replica: file://DIR or s3://bucket/prefix."
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(help="With --from-replica: the point in time (RFC 3339), default the latest."),
    ] = None,
    verify_only: Annotated[bool, typer.Option(help="Run every check of steps 1-6; change nothing.")] = False,
    target: Annotated[Path | None, typer.Option(help="Restore into this dir (default the data dir).")] = None,
    allow_key_rollback: Annotated[
        bool, typer.Option(help="Accept a keyring older than the live one.")
    ] = False,
    keyring: Annotated[
        KeyringChoice,
        typer.Option(help="Backup keyring older than live: refuse, or merge (keep the live keyring)."),
    ] = KeyringChoice.REFUSE,
    receipt_path: Annotated[
        Path | None, typer.Option("--receipt", help="Also write the receipt here.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Restore a backup, or a replica's point in time, in eight checked steps with an atomic swap."""
    steps = [s for s in StepName if not (verify_only and s in (StepName.SWAP, StepName.SMOKE))]
    with _exit_codes(), _progress() as bar:
        _check_source(backup_id, from_uri, from_replica, at)
        task = bar.add_task("fetch", total=len(steps))

        def hook(event: str) -> None:
            stage, _, name = event.partition(":")
            if stage in ("before", "after"):
                bar.update(task, advance=stage == "after", description=name)

        if from_replica is not None:
            receipt = backups.restore_from_replica(
                settings(),
                from_replica,
                now=now(),
                at=at,
                target=target,
                verify_only=verify_only,
                allow_key_rollback=allow_key_rollback,
                keyring_merge=keyring is KeyringChoice.MERGE,
                hook=hook,
            )
        else:
            receipt = backups.restore_now(
                settings(),
                backup_id or "",
                now=now(),
                from_uri=from_uri,
                verify_only=verify_only,
                target=target,
                allow_key_rollback=allow_key_rollback,
                keyring_merge=keyring is KeyringChoice.MERGE,
                hook=hook,
            )
    if receipt_path is not None:
        service.write_json(receipt_path, receipt)
    emit(as_json, receipt, lambda: _show_receipt(receipt))


def _check_source(backup_id: str | None, from_uri: str | None, replica: str | None, at: str | None) -> None:
    """Exactly one of --backup and --from-replica; --at and --from only with their own source."""
    if at is not None and replica is None:
        raise InvalidInputError("--at needs --from-replica", field="--at")
    if (backup_id is None) == (replica is None):
        raise InvalidInputError(
            "name what to restore", field="--backup/--from-replica", expected="exactly one of them"
        )
    if from_uri is not None and replica is not None:
        raise InvalidInputError("--from names a backup store; use --from-replica alone", field="--from")
