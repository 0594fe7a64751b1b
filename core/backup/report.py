"""Human-readable markdown reports of a backup and of a restore receipt (Prefect artifacts, runbooks).

Reports name files, sizes, digests, steps and timings; they never contain file contents or keys.
"""

from __future__ import annotations

from core.backup import BackupResult
from core.backup.restore import RestoreReceipt
from core.backup.retention import RetentionPlan


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


def restore_markdown(receipt: RestoreReceipt) -> str:
    """The receipt as a table of the eight steps with status, timing and checks."""
    kind = "Verification" if receipt.verify_only else "Restore"
    sig = receipt.signature.kid if receipt.signature else "-"
    lines = [
        f"# {kind} of `{receipt.backup_id}`: {receipt.result}",
        "",
        f"- live dir: `{receipt.live_dir}`; at {receipt.restored_at}",
        f"- recovered first: {receipt.recovered_first}",
        f"- manifest sha3-256: `{receipt.manifest_sha3_256}`; receipt signed by `{sig}`",
        "",
        "| # | step | status | ms | checks |",
        "|---:|---|---|---:|---|",
    ]
    for step in receipt.steps:
        checks = "; ".join(f"{c.id}: {c.status} {c.message}" for c in step.checks) or "-"
        row = (step.number, step.name, step.status, step.duration_ms, _cell(checks))
        lines.append("| " + " | ".join(map(str, row)) + " |")
    return "\n".join(lines) + "\n"
