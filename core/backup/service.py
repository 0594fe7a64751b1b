"""The backup and restore use cases: one service function each, shared by the CLI, the API and Prefect.

``backup_now``, ``list_backups``, ``prune`` and ``restore_now`` take :class:`Settings` and explicit
inputs (``now`` included) and return typed results. The restore flow runs the same steps one task at
a time from :func:`prepare_restore`'s :class:`RestoreJob`. Both backup and restore emit the
``cap_backup_*``/``cap_restore_*`` metrics here, so CLI runs, API-triggered flows and schedules all
count. Signers are loaded inside these functions from their 0600 files and never handed out.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from core import status
from core.backup import BackupResult, create_backup
from core.backup.manifest import TrustedKey, check_backup_id, parse_keyring
from core.backup.pitr import parse_point, run_replica_restore
from core.backup.replica import parse_replica_url
from core.backup.restore import (
    RestoreContext,
    RestoreOptions,
    RestoreReceipt,
    StepRecord,
    build_receipt,
    default_smoke,
    run_restore,
    sign_receipt,
)
from core.backup.retention import KeepRules, RetentionPlan, apply_retention
from core.backup.scan import PiiMode
from core.backup.storage import BackupListing, BackupStore, open_store
from core.backup.swap import Recovery
from core.errors import ConfigError, StorageError
from core.generation import replacing_state
from core.keys import KeyStatus, KeyStore
from core.metrics import BACKUP_DURATION, BACKUP_TOTAL, RESTORE_DURATION, RESTORE_TOTAL
from core.policy_store import StoredPolicy, verify_stored
from core.service import default_signer
from core.settings import Settings
from core.signing import Ed25519Signer
from core.store import REPLICA_REFUSAL, RESTORE_REFUSAL, require_files

SUCCESS, FAILURE = "success", "failure"


@contextlib.contextmanager
def _metered(total: Counter, duration: Histogram) -> Iterator[None]:
    start, ok = time.perf_counter(), False
    try:
        yield
        ok = True
    finally:
        total.labels(result=SUCCESS if ok else FAILURE).inc()
        duration.observe(time.perf_counter() - start)


def restore_metrics() -> contextlib.AbstractContextManager[None]:
    """Count one restore (``cap_restore_total{result}``) and time it, around any restore driver."""
    return _metered(RESTORE_TOTAL, RESTORE_DURATION)


def store_uri(settings: Settings, uri: str | None) -> str:
    """``uri``, or ``file://<data_dir>/backups`` by default."""
    return uri or settings.layout.backups_dir.resolve().as_uri()


def open_backup_store(settings: Settings, uri: str | None) -> BackupStore:
    """The store named by ``uri`` (default under the data dir). Raises :class:`ConfigError`."""
    return open_store(store_uri(settings, uri))


# --- backup ----------------------------------------------------------------------------------------


def backup_now(
    settings: Settings,
    *,
    now: datetime,
    to_uri: str | None = None,
    encrypt: bool = False,
    pii: PiiMode | str = PiiMode.REFUSE,
    created_by: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> BackupResult:
    """Back up the data dir into ``to_uri``, signed by the default signer; counts it in ``cap_backup_total``
    and books a success in the status book (the ``cap_backup_last_success_*`` gauge reads it).

    In PostgreSQL mode the archive holds the database's tables from one snapshot and the node-local files
    (key metadata, config); the manifest says ``engine: postgresql`` (ADR 0015).

    Raises what :func:`core.backup.create_backup` raises and :class:`NotFoundError` without a keyring.
    """
    with _metered(BACKUP_TOTAL, BACKUP_DURATION):
        result = create_backup(
            settings.layout,
            open_backup_store(settings, to_uri),
            default_signer(settings),
            now=now,
            encrypt=encrypt,
            pii=pii,
            created_by=created_by,
            progress=progress,
            database=settings.database if settings.database.is_postgresql else None,
        )
    with status.open_book(settings.layout.status_db) as book:
        book.record_success(status.BACKUP, now, result.manifest.archive.size_bytes, result.manifest.backup_id)
    return result


def list_backups(settings: Settings, from_uri: str | None = None) -> list[BackupListing]:
    """Every backup in the store, oldest id first (unreadable manifests are listed as such)."""
    return open_backup_store(settings, from_uri).list_backups()


def prune(
    settings: Settings, rules: KeepRules, *, from_uri: str | None = None, dry_run: bool = True
) -> RetentionPlan:
    """Apply keep-rules to the store (nothing is deleted when ``dry_run`` or when no rule is set)."""
    return apply_retention(open_backup_store(settings, from_uri), rules, dry_run=dry_run)


# --- restore ---------------------------------------------------------------------------------------


def rehash_policy_store(path: Path) -> list[str]:
    """Restore step 5's rehash: every stored policy's and IR's hash recomputed (read-only)."""
    columns = tuple(StoredPolicy.model_fields)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(f"SELECT {', '.join(columns)} FROM policies").fetchall()  # noqa: S608
    except sqlite3.Error as exc:
        return [f"policies table unreadable: {exc}"]
    finally:
        conn.close()
    problems: list[str] = []
    for row in rows:
        try:
            problems.extend(verify_stored(StoredPolicy(**dict(zip(columns, row, strict=True)))))
        except ValidationError as exc:
            problems.append(f"policy row {row[0]!r} is malformed: {exc.error_count()} field errors")
    return problems


def smoke_restored(live_dir: Path) -> None:
    """Restore step 8: the registry opens, the keyring loads and its default signer can sign.

    Private keys are not in backups; they are carried over from the previous live dir, so a restore
    into a directory without the signing key fails here and is swapped back.
    """
    default_smoke(live_dir)
    default_signer(Settings(data_dir=live_dir))


def _trusted_keys(settings: Settings, live: Path) -> tuple[TrustedKey, ...] | None:
    """For a restore into another dir that has no keyring yet, trust the configured keyring."""
    own = settings.layout.keyring
    if live == settings.data_dir.absolute() or (live / "keyring.json").exists() or not own.exists():
        return None
    return parse_keyring(own.read_bytes(), source=str(own)).keys


@dataclass(frozen=True)
class RestoreJob:
    """Where to restore from and to, and how: everything the eight steps need."""

    store: BackupStore
    backup_id: str
    live_dir: Path
    options: RestoreOptions

    def new_context(self, now: datetime | None = None) -> RestoreContext:
        return RestoreContext(
            backup_id=self.backup_id,
            live_dir=self.live_dir,
            verify_only=self.options.verify_only,
            allow_key_rollback=self.options.allow_key_rollback,
            keyring_merge=self.options.keyring_merge,
            operator_keys=self.options.operator_keys,
            started_at=now,
        )

    def holding_state(self) -> contextlib.AbstractContextManager[None]:
        """A real restore holds the state lock exclusive (registry writers wait or fail retryably)."""
        return contextlib.nullcontext() if self.options.verify_only else replacing_state(self.live_dir)


def prepare_restore(
    settings: Settings,
    backup_id: str,
    *,
    from_uri: str | None = None,
    verify_only: bool = False,
    target: str | Path | None = None,
    allow_key_rollback: bool = False,
    keyring_merge: bool = False,
    hook: Callable[[str], None] | None = None,
) -> RestoreJob:
    """Resolve store, live dir (``target`` or the data dir) and options.

    Raises :class:`InvalidInputError` for a bad id, :class:`ConfigError` for a bad URI and
    ``restore_target_invalid`` when the target exists but is not a directory, ``not_on_postgresql`` in
    PostgreSQL mode (there :func:`restore_now` runs the eight steps of :mod:`core.backup.pg_restore`).
    """
    require_files(settings, RESTORE_REFUSAL)
    live = Path(target or settings.data_dir).absolute()
    if live.exists() and not live.is_dir():
        raise ConfigError("restore target is not a directory", code="restore_target_invalid", file=str(live))
    options = RestoreOptions(
        verify_only=verify_only,
        allow_key_rollback=allow_key_rollback,
        keyring_merge=keyring_merge,
        operator_keys=settings.operator_public_keys,
        trusted_keys=_trusted_keys(settings, live),
        policy_rehash=rehash_policy_store,
        smoke=smoke_restored,
        hook=hook,
    )
    return RestoreJob(open_backup_store(settings, from_uri), check_backup_id(backup_id), live, options)


@contextlib.contextmanager
def target_errors(live_dir: Path) -> Iterator[None]:
    """Translate file-system failures of a restore into ``restore_target_failed`` (chained)."""
    try:
        yield
    except OSError as exc:
        raise StorageError(
            f"restore target failed: {exc.strerror or exc}", code="restore_target_failed", file=str(live_dir)
        ) from exc


def restore_receipt(
    settings: Settings,
    ctx: RestoreContext,
    records: Sequence[StepRecord],
    recovered: Recovery,
    now: datetime,
) -> RestoreReceipt:
    """The receipt of a finished restore, signed by the configured default signer."""
    return sign_receipt(build_receipt(ctx, records, recovered, now), default_signer(settings))


class _AfterRestoreSigner:
    """Signs the receipt with the default signer of the keyring in force *after* the restore, so a broken
    or tampered live keyring (what the restore repairs) does not block it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def _signer(self) -> Ed25519Signer:
        return default_signer(self._settings)

    @property
    def kid(self) -> str:
        return self._signer().kid

    @property
    def public_key_b64(self) -> str:
        return self._signer().public_key_b64

    def sign(self, data: bytes) -> bytes:
        return self._signer().sign(data)


def restore_now(
    settings: Settings,
    backup_id: str,
    *,
    now: datetime,
    from_uri: str | None = None,
    verify_only: bool = False,
    target: str | Path | None = None,
    allow_key_rollback: bool = False,
    keyring_merge: bool = False,
    hook: Callable[[str], None] | None = None,
) -> RestoreReceipt:
    """Restore (or with ``verify_only`` only check) ``backup_id``; returns the signed receipt.

    Raises :class:`NotFoundError` (no such backup), :class:`IntegrityError`/:class:`VerificationError`
    (a check failed; ``restore_smoke_failed`` after an automatic swap-back), :class:`ConflictError`
    (another restore runs) or :class:`StorageError` ``restore_target_failed``. Emits the restore metrics.
    """
    with restore_metrics():
        if settings.database.is_postgresql:
            return _restore_database(
                settings,
                backup_id,
                now=now,
                from_uri=from_uri,
                verify_only=verify_only,
                target=target,
                allow_key_rollback=allow_key_rollback,
                keyring_merge=keyring_merge,
                hook=hook,
            )
        job = prepare_restore(
            settings,
            backup_id,
            from_uri=from_uri,
            verify_only=verify_only,
            target=target,
            allow_key_rollback=allow_key_rollback,
            keyring_merge=keyring_merge,
            hook=hook,
        )
        with target_errors(job.live_dir):
            return run_restore(
                job.store,
                job.backup_id,
                job.live_dir,
                _AfterRestoreSigner(settings),
                now=now,
                options=job.options,
            )


def _held_keys(settings: Settings) -> tuple[TrustedKey, ...] | None:
    """For a restore into a database without a keyring (a fresh one after a disaster): the public keys of the
    signing keys this node holds (``keys/<kid>.json`` beside its ``.pem``), never revoked ones."""
    store = KeyStore(settings.layout)
    held = tuple(
        TrustedKey.model_validate({"kid": m.kid, "public_key": m.public_key, "status": m.status.value})
        for m in store.list()
        if store.has_private_key(m.kid) and m.status is not KeyStatus.REVOKED
    )
    return held or None


def _restore_database(
    settings: Settings,
    backup_id: str,
    *,
    now: datetime,
    from_uri: str | None,
    verify_only: bool,
    target: str | Path | None,
    allow_key_rollback: bool,
    keyring_merge: bool,
    hook: Callable[[str], None] | None,
) -> RestoreReceipt:
    """PostgreSQL mode: the eight steps of :mod:`core.backup.pg_restore` into the configured database."""
    from core.backup.pg_restore import run_pg_restore

    if target is not None:
        raise ConfigError(
            "a restore target dir is for the SQLite data dir; PostgreSQL mode restores into CAP_DATABASE_URL",
            code="restore_target_invalid",
            field="target",
        )
    options = RestoreOptions(
        verify_only=verify_only,
        allow_key_rollback=allow_key_rollback,
        keyring_merge=keyring_merge,
        operator_keys=settings.operator_public_keys,
        trusted_keys=_held_keys(settings),
        hook=hook,
    )
    store = open_backup_store(settings, from_uri)
    return run_pg_restore(
        settings, store, check_backup_id(backup_id), _AfterRestoreSigner(settings), now=now, options=options
    )


def restore_from_replica(
    settings: Settings,
    replica_url: str,
    *,
    now: datetime,
    at: str | None = None,
    target: str | Path | None = None,
    verify_only: bool = False,
    allow_key_rollback: bool = False,
    keyring_merge: bool = False,
    hook: Callable[[str], None] | None = None,
) -> RestoreReceipt:
    """Point-in-time restore of the registry, policy store, keyring, key metadata and lists (their state
    snapshots) from a Litestream replica (``at`` RFC 3339, default the latest point) into the data dir or
    ``target``, through the eight steps; signed receipt. A keyring older than the live one is refused unless
    ``allow_key_rollback`` or ``keyring_merge``, as in an archive restore.

    Raises :class:`ConfigError`/:class:`InvalidInputError` (bad URL or ``at``, before any work),
    :class:`IntegrityError` ``replica_corrupt``, :class:`NotFoundError` ``replica_empty``/
    ``replica_point_missing``, the checks' errors, or :class:`StorageError`. Emits the restore metrics.
    """
    require_files(settings, REPLICA_REFUSAL)
    with restore_metrics():
        point = parse_point(at)
        parse_replica_url(replica_url)
        live = Path(target or settings.data_dir).absolute()
        if live.exists() and not live.is_dir():
            raise ConfigError(
                "restore target is not a directory", code="restore_target_invalid", file=str(live)
            )
        options = RestoreOptions(
            verify_only=verify_only,
            allow_key_rollback=allow_key_rollback,
            keyring_merge=keyring_merge,
            operator_keys=settings.operator_public_keys,
            policy_rehash=rehash_policy_store,
            smoke=smoke_restored,
            hook=hook,
        )
        with target_errors(live):
            return run_replica_restore(
                replica_url, live, _AfterRestoreSigner(settings), now=now, at=point, options=options
            )
