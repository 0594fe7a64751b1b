"""The policy store on PostgreSQL: the same rows, deduplication and conflicts as
:class:`core.policy_store.PolicyStore`.

Every write runs in one transaction under a transaction-scoped advisory lock, so two nodes saving the same
policy at once store it once (the second sees the first's row and only bumps ``updated_at``) and a different
policy under the same id is refused, never half-written.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any, Final, Self

import psycopg

from core import db as sqlite_db
from core.errors import ConflictError, NotFoundError
from core.policy_store import COMPONENT, PolicyStatus, StoredPolicy, policy_status
from core.store.postgres.db import database
from core.store.url import DatabaseUrl

WRITE_LOCK: Final = 0x0CA9_0002
"""``pg_advisory_xact_lock`` key serialising policy writes across processes and nodes."""

MIGRATIONS: Final = [
    """
    CREATE TABLE policies (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL CHECK (status IN ('active', 'deprecated', 'draft')),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        policy_json TEXT NOT NULL,
        ir_json TEXT,
        ir_hash TEXT
    );
    CREATE INDEX idx_policies_status ON policies(status);
    CREATE INDEX idx_policies_created ON policies(created_at DESC);
    """,
]

_COLUMNS: Final = tuple(StoredPolicy.model_fields)
_LIST: Final = ", ".join(_COLUMNS)
_SELECT: Final = f"SELECT {_LIST} FROM policies"  # noqa: S608 - fixed column names
_INSERT: Final = f"INSERT INTO policies ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))})"  # noqa: S608

Conn = psycopg.Connection[tuple[Any, ...]]


class PgPolicyStore:
    """Policies in a PostgreSQL database, shareable across threads. Failures raise :class:`StorageError`."""

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self._db = database(url)
        self._db.ensure(COMPONENT, MIGRATIONS)

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
    ) -> StoredPolicy:
        """As :meth:`core.policy_store.PolicyStore.save`: dedup by hash, ``policy_conflict`` for another hash
        under ``policy_id``, :class:`InvalidInputError` for an unknown status."""
        stamp = sqlite_db.timestamp_text(now, digits=3)
        status = policy_status(status)
        with self._db.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            same = _stored_same(conn, policy_id, policy_hash)
            if same is not None:
                conn.execute("UPDATE policies SET updated_at = %s WHERE id = %s", (stamp, same.id))
                return same.model_copy(update={"updated_at": stamp})
            policy = StoredPolicy(
                id=policy_id,
                name=name,
                version=version,
                hash=policy_hash,
                status=status,
                created_at=stamp,
                updated_at=stamp,
                description=description,
                policy_json=policy_json,
                ir_json=ir_json,
                ir_hash=ir_hash,
            )
            values = [getattr(policy, column) for column in _COLUMNS]
            values[_COLUMNS.index("status")] = policy.status.value
            conn.execute(_INSERT, values)
        return policy

    def get(self, policy_id: str) -> StoredPolicy:
        """The policy with ``policy_id``. Raises :class:`NotFoundError` (``policy_not_found``)."""
        return self._must("id", policy_id, field="policy_id")

    def get_by_hash(self, policy_hash: str) -> StoredPolicy:
        """The policy with ``policy_hash``. Raises :class:`NotFoundError` (``policy_not_found``)."""
        return self._must("hash", policy_hash, field="policy_hash")

    def list(self, status: PolicyStatus | str | None = None) -> builtins.list[StoredPolicy]:
        """Policies newest first, optionally only those with ``status``."""
        sql = _SELECT
        params: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status = %s"
            params = (policy_status(status).value,)
        with self._db.transaction() as conn:
            rows = conn.execute(sql + ' ORDER BY created_at DESC, id COLLATE "C"', params).fetchall()
        return [_from_row(row) for row in rows]

    def set_status(self, policy_id: str, status: PolicyStatus | str, now: datetime) -> StoredPolicy:
        """Change a policy's status. Raises :class:`NotFoundError` (``policy_not_found``) or
        :class:`InvalidInputError` for an unknown status."""
        stamp = sqlite_db.timestamp_text(now, digits=3)
        value = policy_status(status).value
        with self._db.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            update = f"UPDATE policies SET status = %s, updated_at = %s WHERE id = %s RETURNING {_LIST}"  # noqa: S608
            row = conn.execute(update, (value, stamp, policy_id)).fetchone()
        if row is None:
            raise _not_found("policy_id", policy_id)
        return _from_row(row)

    def close(self) -> None:
        """Nothing to release: the connections belong to the process's pool."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _must(self, column: str, value: str, *, field: str) -> StoredPolicy:
        with self._db.transaction() as conn:
            found = _row(conn, column, value)
        if found is None:
            raise _not_found(field, value)
        return found


def _row(conn: Conn, column: str, value: str) -> StoredPolicy | None:
    row = conn.execute(f"{_SELECT} WHERE {column} = %s", (value,)).fetchone()
    return None if row is None else _from_row(row)


def _stored_same(conn: Conn, policy_id: str, policy_hash: str) -> StoredPolicy | None:
    same = _row(conn, "hash", policy_hash)
    if same is not None:
        return same
    other = _row(conn, "id", policy_id)
    if other is not None:
        raise ConflictError(
            f"policy {policy_id!r} is already stored with a different hash",
            code="policy_conflict",
            field="policy_id",
            stored_hash=other.hash,
            new_hash=policy_hash,
        )
    return None


def _from_row(row: tuple[Any, ...]) -> StoredPolicy:
    return StoredPolicy(**dict(zip(_COLUMNS, row, strict=True)))


def _not_found(field: str, value: str) -> NotFoundError:
    return NotFoundError(f"no stored policy with {field} {value!r}", code="policy_not_found", field=field)
