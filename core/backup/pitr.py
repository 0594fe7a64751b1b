"""Point-in-time restore from a Litestream replica, through the same eight steps as an archive restore.

Steps 1-3 differ from :mod:`core.backup.restore` only in where the state comes from: (1) Litestream
restores the registry, the policy store and the state snapshots (``state.sqlite``), as of ``--at`` or the
latest point, into the work dir (a segment failing its checksum stops here with ``replica_corrupt``);
(2) ``PRAGMA integrity_check`` on each restored file, then the newest state snapshot as of that point: its
signature (trusted keys, else the live keyring, else its own keyring with a warning), every path against
the allowlist, every file against its digest, unpacked beside the databases; (3) staging gets them plus
the live audit log and config (and, from a replica without state snapshots, the live keyring, key
metadata and lists, with a warning). Steps 4-8 are the archive restore's own functions: schema and policy
rehash, key metadata and keyring signature chain with the same keyring-rollback decision (refuse, merge,
or roll back explicitly), the journalled atomic swap, smoke checks with swap-back. The receipt records
the transaction and time actually reached.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from core.backup.manifest import TrustedKey, parse_keyring
from core.backup.replica import (
    litestream_config,
    parse_replica_url,
    replicated_databases,
    restore_db,
    write_config,
)
from core.backup.restore import (
    KEYRING_STATE,
    PlannedStep,
    ReplicaDbPoint,
    ReplicaPoint,
    RestoreContext,
    RestoreOptions,
    RestoreReceipt,
    StepName,
    _check_key_file,
    _check_keyring_chain,
    _keyring_decision,
    check_sqlite_file,
    discard_extract,
    discard_fetch,
    discard_staging,
    prepare_staging,
    run_plan,
    smoke_check,
    swap_back,
    swap_in,
)
from core.backup.state_snapshots import (
    STATE_DB,
    newest_snapshot,
    snapshot_keyring,
    unpack_snapshot,
    verify_snapshot_signature,
)
from core.errors import CapError, ConfigError, IntegrityError, InvalidInputError, NotFoundError
from core.keys import parse_timestamp
from core.layout import DataLayout
from core.signing import Signer

SNAPSHOT_STATE = (*KEYRING_STATE, "keyring.floor.json", "lists", "keys")  # from the state snapshot
LIVE_STATE = ("audit.jsonl", "config.yaml")  # always the live ones: the audit log records this restore too
SNAPSHOT_CHECK = "state_snapshot"
REGISTRY_TABLES = ("registry_entries",)
POLICY_TABLES = ("policies",)


def replica_restore_id(at: datetime | None, now: datetime) -> str:
    """The id naming this restore's work, staging and old dirs: ``pitr-<point>`` (``latest-<now>``)."""
    point = (at or now).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"pitr-{point}" if at else f"pitr-latest-{point}"


def parse_point(text: str | None) -> datetime | None:
    """``--at`` as an aware UTC time. Raises :class:`InvalidInputError` naming the field."""
    if not text:
        return None
    try:
        return parse_timestamp(text, field="at")
    except (CapError, ValueError) as exc:
        raise InvalidInputError(
            "invalid point in time", field="--at", found=text, expected="RFC 3339, e.g. 2026-12-05T10:42:00Z"
        ) from exc


def _rfc3339(point: datetime) -> str:
    return point.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- steps 1-3 -----------------------------------------------------------------------------------------
def fetch_replica(ctx: RestoreContext, env: Mapping[str, str] | None = None) -> None:
    """Step 1: Litestream restores each replicated database into the work dir, up to the requested point.

    Raises :class:`IntegrityError` ``replica_corrupt``, :class:`NotFoundError` ``replica_empty``,
    :class:`StorageError` or :class:`ConfigError` (bad URL, no binary).
    """
    if ctx.replica is None:
        raise ConfigError("replica restore step run without a replica", field="replica")
    layout = DataLayout(ctx.live_dir)
    ctx.work_dir.mkdir(exist_ok=True)
    ctx.extract_dir.mkdir(exist_ok=True)
    config = litestream_config(layout, parse_replica_url(ctx.replica.url), ctx.work_dir / "meta", env)
    path = write_config(ctx.work_dir / "litestream.yml", config)
    points = []
    for db in replicated_databases(layout):
        try:
            done = restore_db(path, db, ctx.extract_dir / db.path.name, ctx.replica.requested, env)
        except NotFoundError as exc:
            if db.path.name == STATE_DB:  # a replica from before state snapshots: step 3 keeps the live state
                ctx.check(f"replica:{db.name}", f"no state snapshots at that point ({exc.code})", "warn")
                continue
            if exc.code != "replica_empty" or db.path.exists():  # never drop a live database
                raise
            ctx.check(f"replica:{db.name}", "not replicated and not live: nothing to restore", "warn")
            continue
        points.append(ReplicaDbPoint(name=db.name, txid=f"{done.txid:016x}", replicated_at=done.timestamp))
        ctx.check(f"replica:{db.name}", f"txid {done.txid:016x} replicated at {done.timestamp or 'unknown'}")
    reached = max((p.replicated_at for p in points if p.replicated_at), default=None)
    ctx.replica = ctx.replica.model_copy(update={"databases": tuple(points), "reached": reached})


def check_restored_files(
    ctx: RestoreContext, quick: bool = False, trusted: tuple[TrustedKey, ...] | None = None
) -> None:
    """Step 2: each restored database leaves WAL mode (rollback journal, as an archive holds it: no
    ``-wal``/``-shm`` side files follow it into staging) and passes ``PRAGMA integrity_check``; then the
    state snapshot is checked and unpacked (:func:`unpack_state`).
    Raises :class:`IntegrityError` or :class:`VerificationError`."""
    for db in sorted(ctx.extract_dir.glob("*.sqlite")):
        conn = sqlite3.connect(db)
        try:
            conn.execute("PRAGMA journal_mode=DELETE").fetchone()
        except sqlite3.Error as exc:
            raise IntegrityError(f"restored database unreadable: {exc}", file=db.name) from exc
        finally:
            conn.close()
        check_sqlite_file(ctx, db, db.name, set(), quick)
    unpack_state(ctx, trusted)


def _snapshot_trust(
    ctx: RestoreContext, trusted: tuple[TrustedKey, ...] | None
) -> tuple[tuple[TrustedKey, ...], str] | None:
    """Keys to check a snapshot's signature with, and where they come from (None: none outside it)."""
    if trusted is not None:
        return trusted, "trusted keys"
    ring = ctx.live_dir / "keyring.json"
    if not ring.is_file():
        return None
    return parse_keyring(ring.read_bytes(), source=str(ring)).keys, "live keyring"


def unpack_state(ctx: RestoreContext, trusted: tuple[TrustedKey, ...] | None = None) -> None:
    """Step 2, second half: the newest state snapshot in the restored ``state.sqlite`` (as of the point)
    is signed by a trusted key, names only allowlisted files, and each file matches its digest; its files
    are written beside the restored databases. Raises :class:`VerificationError`/:class:`IntegrityError`."""
    path = ctx.extract_dir / STATE_DB
    snap = newest_snapshot(path) if path.exists() else None
    if snap is None:
        ctx.check(
            SNAPSHOT_CHECK, "no state snapshot in the replica: live keyring, keys and lists kept", "warn"
        )
        return
    trust, own = _snapshot_trust(ctx, trusted), snapshot_keyring(path, snap)
    if trust is None:
        trust = own, "its own keyring (no live keyring; step 6's chain check anchors it)"
        ctx.check("state_signature_trust", f"state snapshot checked against {trust[1]}", "warn")
    elif all(k.kid != snap.kid for k in trust[0]):
        # rolling forward past a rotation the live keyring has not seen (e.g. after restoring an older point)
        trust = (
            own,
            f"its own keyring: signer {snap.kid} is not in the {trust[1]}; step 6's chain check anchors it",
        )
        ctx.check("state_signature_trust", f"state snapshot checked against {trust[1]}", "warn")
    verify_snapshot_signature(snap, trust[0])
    files = unpack_snapshot(path, snap, ctx.extract_dir)
    when = snap.manifest.taken_at
    ctx.check(SNAPSHOT_CHECK, f"#{snap.seq} of {when}, signed by {snap.kid} ({trust[1]}): {len(files)} files")


def _from_snapshot(ctx: RestoreContext) -> bool:
    return any(c.id == SNAPSHOT_CHECK and c.status == "ok" for c in ctx.checks)


def stage_with_live_state(ctx: RestoreContext) -> None:
    """Step 3: staging = restored databases and state snapshot + copies of the live audit log and config
    (and of the live keyring, key metadata and lists when the replica holds no state snapshot)."""
    ring = ctx.live_dir / "keyring.json"
    if ring.is_file():  # the version a restored keyring is compared with in step 6
        ctx.live_keyring_version = parse_keyring(ring.read_bytes(), source=str(ring)).version
    prepare_staging(ctx)
    kept = []
    for name in LIVE_STATE if _from_snapshot(ctx) else (*SNAPSHOT_STATE, *LIVE_STATE):
        source = ctx.live_dir / name
        if source.is_dir() and name == "keys":
            (ctx.staging_dir / "keys").mkdir(exist_ok=True)
            for meta in sorted(source.glob("*.json")):
                shutil.copy2(meta, ctx.staging_dir / "keys" / meta.name)
                kept.append(f"keys/{meta.name}")
        elif source.is_dir():
            shutil.copytree(source, ctx.staging_dir / name, symlinks=True)
            kept.append(name + "/")
        elif source.is_file():
            shutil.copy2(source, ctx.staging_dir / name)
            kept.append(name)
    staging = ctx.staging_dir
    ctx.staged_files = tuple(
        sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if not p.is_dir())
    )
    ctx.check("live_state_kept", ", ".join(kept) or "nothing")


# -- steps 4-6 -----------------------------------------------------------------------------------------
def check_replica_registry(ctx: RestoreContext, quick: bool = False) -> None:
    """Step 4: the restored registry has the registry's tables. Raises :class:`IntegrityError`."""
    path = ctx.staging_dir / "registry.sqlite"
    if not path.exists():
        ctx.check("sqlite:registry.sqlite", "not in the replica (no live registry either)", "warn")
        return
    check_sqlite_file(ctx, path, "registry.sqlite", set(REGISTRY_TABLES), quick)


def check_replica_policies(ctx: RestoreContext, opts: RestoreOptions) -> None:
    """Step 5: every stored policy's and IR's hash recomputes. Raises :class:`IntegrityError`."""
    path = ctx.staging_dir / "policies.sqlite"
    if not path.exists():
        ctx.check("sqlite:policies.sqlite", "not in the replica (no live policy store either)", "warn")
        return
    want = set(POLICY_TABLES) | set(opts.expected_policy_tables)
    check_sqlite_file(ctx, path, "policies.sqlite", want, opts.quick_check)
    problems = list(opts.policy_rehash(path)) if opts.policy_rehash else []
    if problems:
        raise IntegrityError("policy or IR hash mismatch", file=path.name, problems=problems[:20])
    ctx.check("policy_hashes", "recomputed" if opts.policy_rehash else "no rehash function given")


def check_replica_keys(ctx: RestoreContext) -> None:
    """Step 6: key metadata and the keyring's signature chain check out; a keyring from the snapshot older
    than the live one gets the archive restore's decision (refuse, ``--keyring merge``, or
    ``--allow-key-rollback``). Raises :class:`IntegrityError`/:class:`VerificationError`."""
    for meta in sorted((ctx.staging_dir / "keys").glob("*.json")):
        _check_key_file(ctx, f"keys/{meta.name}")
    ring = ctx.staging_dir / "keyring.json"
    if ring.exists():
        _check_keyring_chain(ctx, ring)
    if not _from_snapshot(ctx):
        ctx.check("keyring", "kept as it is: the replica carries no state snapshot", "warn")
        return
    if not ring.exists():
        ctx.check("keyring", "not in the state snapshot", "warn")
        return
    version, live = parse_keyring(ring.read_bytes(), source="keyring.json").version, ctx.live_keyring_version
    if live is not None and version < live:
        _keyring_decision(ctx, version, live)
    older = live is not None and version < live
    ctx.check(
        "keyring", f"version {version} from the state snapshot (live {live})", "warn" if older else "ok"
    )


def replica_plan(opts: RestoreOptions, env: Mapping[str, str] | None = None) -> list[PlannedStep]:
    """The eight steps of a point-in-time restore with their compensations."""
    return [
        (StepName.FETCH, lambda c: fetch_replica(c, env), discard_fetch),
        (
            StepName.VERIFY,
            lambda c: check_restored_files(c, opts.quick_check, opts.trusted_keys),
            discard_extract,
        ),
        (StepName.STAGING, stage_with_live_state, discard_staging),
        (StepName.REGISTRY, lambda c: check_replica_registry(c, opts.quick_check), None),
        (StepName.POLICY, lambda c: check_replica_policies(c, opts), None),
        (StepName.KEYS, check_replica_keys, None),
        (StepName.SWAP, lambda c: swap_in(c, opts.hook), swap_back),
        (StepName.SMOKE, lambda c: smoke_check(c, opts.smoke, opts.hook, opts.keep_old), None),
    ]


def run_replica_restore(
    replica_url: str,
    live_dir: Path,
    signer: Signer,
    *,
    now: datetime,
    at: datetime | None = None,
    options: RestoreOptions | None = None,
    env: Mapping[str, str] | None = None,
) -> RestoreReceipt:
    """Restore the replicated databases as of ``at`` (default latest) into ``live_dir``; signed receipt.

    Same guarantees as :func:`core.backup.restore.run_restore`: on failure the completed steps are
    compensated in reverse, the live dir is untouched or swapped back, and the ``CapError`` is re-raised
    with ``details['restore_checks']``.
    """
    opts = options or RestoreOptions()
    parse_replica_url(replica_url)  # refuse a bad URL before any work
    ctx = RestoreContext(
        backup_id=replica_restore_id(at, now),
        live_dir=Path(live_dir).absolute(),
        verify_only=opts.verify_only,
        allow_key_rollback=opts.allow_key_rollback,
        keyring_merge=opts.keyring_merge,
        operator_keys=opts.operator_keys,
        started_at=now,
        replica=ReplicaPoint(url=replica_url, requested=_rfc3339(at) if at else None),
    )
    return run_plan(ctx, replica_plan(opts, env), opts, signer, now)
