"""Human-readable markdown reports of a backup and of a restore receipt (Prefect artifacts, runbooks).

Reports name files, sizes, digests, steps and timings; they never contain file contents or keys.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.backup import BackupResult
from core.backup.restore import CheckRecord, RestoreReceipt, StepName, StepRecord
from core.backup.retention import RetentionPlan
from core.errors import CapError


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def backup_markdown(result: BackupResult, retention: RetentionPlan | None = None) -> str:
    """Backup id, store, archive and a table of every file (path, type, size, SHA3-256)."""
    m = result.manifest
    lines = [
        f"# Backup `{m.backup_id}`",
        "",
        f"- store: `{result.store_uri}`",
        f"- created: {m.created_at} by {_cell(m.created_by)} (system {m.system_version})",
        f"- archive: `{m.archive.name}`, {m.archive.size_bytes} bytes, sha3-256 `{m.archive.sha3_256}`",
        f"- files: {m.total_files}, {m.total_size_bytes} bytes; encryption {m.encryption.value}",
        f"- keyring version: {m.keyring_version}; signed by `{m.signature.kid if m.signature else '-'}`",
        f"- scan: {result.scan.files_scanned} files, {len(result.scan.findings)} findings",
        "",
        "| path | type | size (bytes) | sha3-256 |",
        "|---|---|---:|---|",
    ]
    lines += [f"| `{_cell(f.path)}` | {f.type.value} | {f.size_bytes} | `{f.sha3_256}` |" for f in m.files]
    if retention is not None:
        verb = "would delete" if retention.dry_run else "deleted"
        lines += ["", f"Retention: kept {len(retention.keep)}, {verb} {len(retention.delete)}"]
        lines += [f"- {verb} `{bid}`" for bid in retention.delete]
    return "\n".join(lines) + "\n"


_ROLLBACK_NOTE = (
    "a keyring rollback: keys retired or revoked after the restored version are trusted again "
    "until the next rotation or revocation"
)


def _warnings(checks: Sequence[CheckRecord]) -> list[str]:
    """One line per ``warn`` check; a keyring older than the live one is named a rollback."""
    lines = []
    for c in (c for c in checks if c.status == "warn"):
        note = f" — {_ROLLBACK_NOTE}" if c.id == "keyring" and "live" in c.message else ""
        lines.append(f"- **warning** `{c.id}`: {_cell(c.message)}{note}")
    return lines


def _step_rows(steps: Sequence[StepRecord]) -> list[str]:
    lines = ["| # | step | status | ms | checks |", "|---:|---|---|---:|---|"]
    for step in steps:
        checks = "; ".join(f"{c.id}: {c.status} {c.message}" for c in step.checks) or "-"
        row = (step.number, step.name, step.status, step.duration_ms, _cell(checks))
        lines.append("| " + " | ".join(map(str, row)) + " |")
    return lines


def restore_markdown(receipt: RestoreReceipt) -> str:
    """The receipt as a table of the eight steps with status, timing and checks; warnings first."""
    kind = "Verification" if receipt.verify_only else "Restore"
    sig = receipt.signature.kid if receipt.signature else "-"
    warnings = _warnings([c for step in receipt.steps for c in step.checks])
    result = f"{receipt.result}, {len(warnings)} warning(s)" if warnings else receipt.result
    lines = [f"# {kind} of `{receipt.backup_id}`: {result}", "", *warnings, *([""] if warnings else [])]
    lines += [
        f"- live dir: `{receipt.live_dir}`; at {receipt.restored_at}",
        f"- recovered first: {receipt.recovered_first}",
        f"- manifest sha3-256: `{receipt.manifest_sha3_256}`; receipt signed by `{sig}`",
        "",
        *_step_rows(receipt.steps),
    ]
    return "\n".join(lines) + "\n"


def failure_markdown(
    backup_id: str,
    verify_only: bool,
    steps: Sequence[StepRecord],
    error: CapError,
    at: str,
) -> str:
    """What a failed restore did: the step that failed, the error (code and diagnostics), the checks
    made so far and the steps completed before it (their compensations ran; the live state is unchanged
    unless the error says otherwise)."""
    done = {s.name for s in steps}
    failed = next((n for n in StepName if n not in done), None)
    checks = [CheckRecord.model_validate(c) for c in error.details.get("restore_checks", [])]
    kind = "Verification" if verify_only else "Restore"
    lines = [
        f"# {kind} of `{backup_id}`: FAILED at step {failed.value if failed else '-'}",
        "",
        f"- error `{error.code}`: {_cell(error.diagnostics())}",
        f"- at {at}; completed steps were compensated in reverse",
        *_warnings(checks),
        "",
        *_step_rows(steps),
        "",
        "## Checks made before the failure",
        *(f"- `{c.id}` {c.status}: {_cell(c.message)}" for c in checks),
    ]
    return "\n".join(lines) + "\n"
