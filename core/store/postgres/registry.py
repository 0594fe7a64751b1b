"""The proof registry on PostgreSQL: the same entries, signature rule and queries as
:class:`core.registry.Registry`.

Entry ids come from the sequence ``registry_entry_seq`` (``proof_%03d`` of its next value): the database hands
each writer, on any node, its own number, and a number once drawn is never drawn again, even when the
transaction that drew it rolls back (the id is then skipped, never reused).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Self

from core.registry import (
    COMPONENT,
    RegistryEntry,
    RegistryReads,
    Verdict,
    sign_entry,
    unsigned_entry,
)
from core.signing import Signer
from core.store.postgres.db import database
from core.store.url import DatabaseUrl

MIGRATIONS: Final = [
    """
    CREATE TABLE registry_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO registry_meta(key, value) VALUES ('registry_version', '1.0');
    CREATE SEQUENCE registry_entry_seq AS BIGINT START 1;
    CREATE TABLE registry_entries (
        id TEXT PRIMARY KEY,
        manifest_hash TEXT NOT NULL,
        proof_hash TEXT NOT NULL,
        timestamp_file TEXT,
        registered_at TEXT NOT NULL,
        signature TEXT NOT NULL,
        public_key TEXT NOT NULL,
        kid TEXT NOT NULL,
        signature_scheme TEXT NOT NULL,
        subject TEXT NOT NULL,
        policy_hash TEXT NOT NULL,
        ir_hash TEXT NOT NULL,
        company_root TEXT NOT NULL,
        supplier_root TEXT NOT NULL,
        ubo_root TEXT NOT NULL,
        result TEXT NOT NULL CHECK (result IN ('OK', 'WARN', 'FAIL')),
        accepted BOOLEAN NOT NULL,
        proof_json TEXT NOT NULL
    );
    CREATE INDEX idx_registry_hashes ON registry_entries(manifest_hash, proof_hash);
    CREATE INDEX idx_registry_subject ON registry_entries(subject, registered_at);
    CREATE INDEX idx_registry_kid ON registry_entries(kid, registered_at);
    """,
]

_COLUMNS: Final = tuple(RegistryEntry.model_fields)
_NEWEST_FIRST: Final = 'ORDER BY registered_at DESC, length(id) DESC, id COLLATE "C" DESC'
_SELECT: Final = f"SELECT {', '.join(_COLUMNS)} FROM registry_entries"  # noqa: S608 - fixed column names
_INSERT: Final = (
    f"INSERT INTO registry_entries ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))})"  # noqa: S608
)


class PgRegistry(RegistryReads):
    """The proof registry in a PostgreSQL database; one instance may be shared across threads (pooled).

    Raises :class:`StorageError` (transient when the server is unreachable or busy) for database failures.
    """

    P = "%s"
    TRUE = "TRUE"
    NEWEST_FIRST = _NEWEST_FIRST

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self._db = database(url)
        self._db.ensure(COMPONENT, MIGRATIONS)

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
    ) -> RegistryEntry:
        """Hash, sign and store a proof under the database's next id; returns the new entry.

        Raises :class:`InvalidInputError` when the proof bytes are not UTF-8 or ``result`` is unknown.
        """
        unsigned = unsigned_entry(
            proof_bytes,
            manifest_bytes,
            facts={"subject": subject, "policy_hash": policy_hash, "ir_hash": ir_hash},
            roots={"company_root": company_root, "supplier_root": supplier_root, "ubo_root": ubo_root},
            result=result,
            accepted=accepted,
            now=now,
            timestamp_file=timestamp_file,
        )
        with self._db.statements() as conn:  # two statements, each atomic: a number drawn is never reused
            row = conn.execute("SELECT nextval('registry_entry_seq')").fetchone()
            assert row is not None
            entry = sign_entry(f"proof_{int(str(row[0])):03d}", unsigned, signer)
            conn.execute(_INSERT, [_to_column(getattr(entry, name)) for name in _COLUMNS])
        return entry

    def close(self) -> None:
        """Nothing to release: the connections belong to the process's pool."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._db.transaction() as conn:
            return list(conn.execute(sql, params).fetchall())


def _to_column(value: Any) -> Any:
    return value.value if isinstance(value, Verdict) else value


class PgRegistryHandle:
    """What a long-running process holds: the one registry of the database (no file to watch or reopen)."""

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self._registry: PgRegistry | None = None

    def get(self) -> PgRegistry:
        if self._registry is None:
            self._registry = PgRegistry(self.url)
        return self._registry

    def close(self) -> None:
        self._registry = None
