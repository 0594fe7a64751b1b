"""The storage seam: where the trusted state lives, chosen by ``CAP_DATABASE_URL`` (:mod:`core.store.url`).

Two engines behind the same public methods and return models:

- files (default, one machine): :mod:`core.db` (SQLite plumbing), :class:`core.registry.Registry`,
  :class:`core.policy_store.PolicyStore`, :class:`core.audit.AuditLog` (a JSONL file),
  :class:`core.store.keyring.FileKeyringStore`, :class:`core.store.lists.FileListsStore`; grouped in
  :mod:`core.store.sqlite`;
- PostgreSQL (``postgresql://…``): :mod:`core.store.postgres` — ``db`` (pool, migrations, error mapping),
  ``registry.PgRegistry``, ``policy_store.PgPolicyStore``, ``audit.PgAuditLog``, ``keyring.PgKeyringStore``
  — and :class:`core.store.lists.PgListsStore`.

Every entry point (CLI, API, tasks, services) opens stores through the factories here, never by path: the
registry, policy store, audit log, keyring (:mod:`core.store.keyring`) and installed lists
(:mod:`core.store.lists`). Signing keys, pinned verifying keys and the operations status book stay files
under the data dir in both modes. Backup and restore of the PostgreSQL state go through
:mod:`core.store.postgres.snapshot` (docs/adr/0015); Litestream replication, point-in-time restore and the
drill stay refused in PostgreSQL mode (:func:`require_files`) rather than copying one node's files.
The PostgreSQL modules (and ``psycopg``) are imported only when PostgreSQL is selected.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, Self

from core.audit import AuditEvent, AuditLog, ChainReport
from core.errors import ConfigError
from core.keyring import KeyringWatcher
from core.policy_store import PolicyStatus, PolicyStore, StoredPolicy
from core.registry import Registry, RegistryEntry, RegistryHandle, Verdict
from core.signing import Signer
from core.store.keyring import FileKeyringStore, KeyringStore, guard_for
from core.store.url import VARIABLE, DatabaseUrl, Engine, parse_database_url

if TYPE_CHECKING:
    from core.settings import Settings
    from core.store.lists import ListsStore

__all__ = [
    "NOT_ON_POSTGRESQL",
    "REPLICA_REFUSAL",
    "RESTORE_REFUSAL",
    "VARIABLE",
    "AuditStore",
    "DatabaseUrl",
    "Engine",
    "PolicyStoreApi",
    "RegistryHandleApi",
    "RegistryStore",
    "audit_log",
    "has_registry",
    "keyring_store",
    "keyring_watcher",
    "lists_store",
    "open_policy_store",
    "open_registry",
    "parse_database_url",
    "prepare_stores",
    "registry_handle",
    "require_files",
    "schema_version",
]


class RegistryStore(Protocol):
    """The proof registry, on either engine."""

    def register(
        self,
        proof_bytes: bytes,
        manifest_bytes: bytes,
        *,
        subject: str,
        policy_hash: str,
        ir_hash: str,
        company_root: str,
        supplier_root: str,
        ubo_root: str,
        result: Verdict | str,
        accepted: bool,
        signer: Signer,
        now: datetime,
        timestamp_file: str | None = None,
    ) -> RegistryEntry: ...
    def get(self, entry_id: str) -> RegistryEntry: ...
    def find(self, manifest_hash: str, proof_hash: str) -> RegistryEntry | None: ...
    def latest_accepted(self, subject: str) -> RegistryEntry | None: ...
    def entries(self, limit: int | None = None, since: datetime | None = None) -> list[RegistryEntry]: ...
    def count_signed_by(self, kid: str, since: datetime | None = None) -> int: ...
    def heads(self) -> list[tuple[str, str]]: ...
    def meta(self) -> dict[str, str]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *_: object) -> None: ...


class RegistryHandleApi(Protocol):
    """A long-running process's registry (``None`` while a SQLite data dir has none)."""

    def get(self) -> RegistryStore | None: ...
    def close(self) -> None: ...


class PolicyStoreApi(Protocol):
    """The policy store, on either engine."""

    def save(
        self,
        policy_id: str,
        name: str,
        version: str,
        policy_hash: str,
        policy_json: str,
        ir_json: str | None,
        ir_hash: str | None,
        description: str,
        now: datetime,
        *,
        status: PolicyStatus | str = PolicyStatus.ACTIVE,
    ) -> StoredPolicy: ...
    def get(self, policy_id: str) -> StoredPolicy: ...
    def get_by_hash(self, policy_hash: str) -> StoredPolicy: ...
    def list(self, status: PolicyStatus | str | None = None) -> builtins.list[StoredPolicy]: ...
    def set_status(self, policy_id: str, status: PolicyStatus | str, now: datetime) -> StoredPolicy: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *_: object) -> None: ...


class AuditStore(Protocol):
    """The hash-chained audit log, on either engine."""

    def append(self, event: str, details: dict[str, Any], now: datetime) -> AuditEvent: ...
    def tail(self) -> tuple[str, int]: ...
    def events(self) -> Iterator[AuditEvent]: ...
    def verify(self) -> ChainReport: ...


def open_registry(settings: Settings) -> RegistryStore:
    """The proof registry of ``settings`` (created and migrated if new). Raises :class:`StorageError`."""
    url = settings.database
    if url.is_postgresql:
        from core.store.postgres.registry import PgRegistry

        return PgRegistry(url)
    return Registry(settings.layout.registry_db)


def registry_handle(settings: Settings) -> RegistryHandleApi:
    """The registry a long-running process holds (the API): reopened after a restore (SQLite), pooled (PG)."""
    url = settings.database
    if url.is_postgresql:
        from core.store.postgres.registry import PgRegistryHandle

        return PgRegistryHandle(url)
    return RegistryHandle(settings.layout.registry_db)


def has_registry(settings: Settings) -> bool:
    """Whether there is a registry to look proofs up in (a SQLite file may be missing; a database is not)."""
    return settings.database.is_postgresql or settings.layout.registry_db.exists()


def open_policy_store(settings: Settings) -> PolicyStoreApi:
    """The policy store of ``settings`` (created and migrated if new). Raises :class:`StorageError`."""
    url = settings.database
    if url.is_postgresql:
        from core.store.postgres.policy_store import PgPolicyStore

        return PgPolicyStore(url)
    return PolicyStore(settings.layout.policy_db)


def audit_log(settings: Settings) -> AuditStore:
    """The audit log of ``settings``. Raises :class:`StorageError` (database unreachable or wrong schema)."""
    url = settings.database
    if url.is_postgresql:
        from core.store.postgres.audit import PgAuditLog

        return PgAuditLog(url)
    return AuditLog(settings.layout.audit_log)


def keyring_store(settings: Settings) -> KeyringStore:
    """Where ``settings``' keyring lives: the data dir's files, or the database's keyring tables."""
    url = settings.database
    if url.is_postgresql:
        from core.store.postgres.keyring import PgKeyringStore

        return PgKeyringStore(url)
    return FileKeyringStore(settings.layout.keyring)


def keyring_watcher(settings: Settings) -> KeyringWatcher:
    """The hot-reloaded keyring of a long-running process (the API): the file's stamp and the data dir's
    generation on SQLite; the database's head version, polled at most every second, on PostgreSQL."""
    store = keyring_store(settings)
    guard = guard_for(store, settings.operator_public_keys)
    if settings.database.is_postgresql:
        return KeyringWatcher(settings.layout.keyring, guard=guard, source=store)
    return KeyringWatcher(
        settings.layout.keyring, generation_path=settings.layout.generation_file, guard=guard
    )


def lists_store(settings: Settings) -> ListsStore:
    """Where ``settings``' installed lists live: ``<data>/lists/lists.json``, or the database."""
    from core.store.lists import FileListsStore, PgListsStore

    url = settings.database
    return (
        PgListsStore(url) if url.is_postgresql else FileListsStore(settings.layout.lists_dir / "lists.json")
    )


def prepare_stores(settings: Settings) -> None:
    """Create and migrate the registry, the policy store and the audit log (``cap serve`` at start)."""
    open_registry(settings).close()
    open_policy_store(settings).close()
    if settings.database.is_postgresql:
        audit_log(settings)
        keyring_store(settings)
        lists_store(settings)


def schema_version(settings: Settings, component: str) -> int:
    """The applied schema version of ``component`` (``registry``, ``policy_store``; 0: none), for readiness
    checks; never creates anything. Raises :class:`StorageError`, or :class:`NotFoundError` for a missing
    SQLite file."""
    url = settings.database
    if url.is_postgresql:
        from core.store.postgres.db import database

        return database(url).schema_versions().get(component, 0)
    from core import db

    path = {"registry": settings.layout.registry_db, "policy_store": settings.layout.policy_db}[component]
    conn = db.connect(path, create=False)
    try:
        return db.schema_version(conn)
    finally:
        conn.close()


NOT_ON_POSTGRESQL = "not_on_postgresql"


def require_files(settings: Settings, refusal: str) -> None:
    """Refuse an operation in PostgreSQL mode, where it would read or write one node's local files instead
    of the shared state. Raises :class:`ConfigError` (``not_on_postgresql``) with ``refusal`` as its message,
    naming ``CAP_DATABASE_URL`` (redacted)."""
    if settings.database.is_postgresql:
        where = settings.database.redacted
        raise ConfigError(refusal, code=NOT_ON_POSTGRESQL, field=VARIABLE, database=where)


RESTORE_REFUSAL = (
    "PostgreSQL mode restores the database with restore_now (cap restore, the restore flow), not step by step"
)
REPLICA_REFUSAL = (
    "point-in-time restore and the restore drill read a Litestream replica of SQLite files; in PostgreSQL "
    "mode use `cap restore BACKUP_ID` or the database's own WAL archiving (PITR)"
)
