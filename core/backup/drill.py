"""The restore drill: restore the replica's latest point into a scratch directory and prove it usable.

Runs the point-in-time restore's eight steps (:mod:`core.backup.pitr`) with a scratch directory as the
target, re-verifies a sample of the restored registry entries against the live keyring and compares each
verdict with the same entry's verdict in the live registry, then removes the scratch directory. The live
data dir is only read. The scheduled ``restore-drill`` deployment publishes the report and its signed receipt.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from core.backup.manifest import parse_keyring
from core.backup.pitr import run_replica_restore
from core.backup.restore import RestoreOptions, RestoreReceipt, default_smoke
from core.backup.service import rehash_policy_store, restore_metrics
from core.errors import NotFoundError, VerificationError
from core.registry import Registry, RegistryEntry, check_entry
from core.service import default_signer, load_local_keyring
from core.settings import Settings
from core.store import REPLICA_REFUSAL, require_files

DEFAULT_SAMPLE = 20


class SampledEntry(BaseModel):
    model_config = ConfigDict(frozen=True)
    entry_id: str
    restored_ok: bool
    live_ok: bool | None  # None: not in the live registry (e.g. undone since by a point-in-time restore)


class DrillReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    replica_url: str
    receipt: RestoreReceipt
    sampled: tuple[SampledEntry, ...]
    restored_entries: int


def _scratch(settings: Settings, now: datetime) -> Path:
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return (settings.data_dir / "run" / f"drill-{stamp}").absolute()


def _sample(restored_db: Path, live_db: Path, settings: Settings, size: int) -> list[SampledEntry]:
    ring = load_local_keyring(settings)
    keys = {e.kid: e.public_key for e in ring.keys}
    with Registry(restored_db) as restored:
        entries: list[RegistryEntry] = restored.entries(limit=size)
    out = []
    with Registry(live_db) as live:
        for entry in entries:
            try:
                live_ok: bool | None = not check_entry(live.get(entry.id), keys.get)
            except NotFoundError:
                live_ok = None
            out.append(
                SampledEntry(entry_id=entry.id, restored_ok=not check_entry(entry, keys.get), live_ok=live_ok)
            )
    return out


def run_drill(
    settings: Settings, replica_url: str, *, now: datetime, sample: int = DEFAULT_SAMPLE
) -> DrillReport:
    """Restore ``replica_url``'s latest point into a scratch dir, check it, compare sampled verdicts.

    Raises what :func:`core.backup.pitr.run_replica_restore` raises, and :class:`VerificationError`
    ``drill_verdict_mismatch`` when a sampled entry verifies differently restored and live.
    """
    require_files(settings, REPLICA_REFUSAL)
    scratch = _scratch(settings, now)
    trusted = parse_keyring(settings.layout.keyring.read_bytes()).keys  # the scratch dir has no keyring
    options = RestoreOptions(
        policy_rehash=rehash_policy_store, smoke=default_smoke, keep_old=False, trusted_keys=trusted
    )
    try:
        with restore_metrics():
            receipt = run_replica_restore(
                replica_url, scratch, default_signer(settings), now=now, options=options
            )
        restored_db, sampled, count = scratch / "registry.sqlite", [], 0
        if restored_db.exists():
            sampled = _sample(restored_db, settings.layout.registry_db, settings, sample)
            with Registry(restored_db) as restored:
                count = len(restored.entries())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        for lock in scratch.parent.glob(f".{scratch.name}.*.lock"):  # the scratch dir's restore/state locks
            lock.unlink(missing_ok=True)
    differ = [s.entry_id for s in sampled if s.live_ok is not None and s.live_ok != s.restored_ok]
    if differ:
        raise VerificationError(
            "restored entries verify differently from live",
            code="drill_verdict_mismatch",
            entries=differ[:20],
        )
    return DrillReport(
        replica_url=replica_url, receipt=receipt, sampled=tuple(sampled), restored_entries=count
    )
