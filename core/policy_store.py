"""The SQLite policy store (original v0.11 ``policies`` table, plus the compiled IR and its hash).

Owns :class:`StoredPolicy`, :class:`PolicyStatus` and :class:`PolicyStore`. Policy and IR JSON are
opaque text here (the compiler lives elsewhere); the store deduplicates by policy hash, refuses a
different hash under an existing policy id, and can re-check the stored hashes
(:func:`verify_stored`) without knowing how policies are compiled.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict

from core import db
from core.digest import digests_equal, sha3_hex, sha3_prefixed
from core.errors import ConflictError, InvalidInputError, NotFoundError

COMPONENT = "policy_store"


class PolicyStatus(str, Enum):  # noqa: UP042 - str mix-in on purpose (JSON, comparisons)
    ACTIVE = "active"
    DEPRECATED = "deprecated"
    DRAFT = "draft"


class StoredPolicy(BaseModel):
    """One row of the ``policies`` table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    version: str
    hash: str
    status: PolicyStatus
    created_at: str
    updated_at: str
    description: str
    policy_json: str
    ir_json: str | None = None
    ir_hash: str | None = None


_COLUMNS = tuple(StoredPolicy.model_fields)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM policies"  # noqa: S608 - fixed column names
_INSERT = f"INSERT INTO policies ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"  # noqa: S608

MIGRATIONS = [
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
    CREATE INDEX idx_policies_hash ON policies(hash);
    CREATE INDEX idx_policies_status ON policies(status);
    CREATE INDEX idx_policies_created ON policies(created_at DESC);
    """,
]


class PolicyStore(db.SqliteStore):
    """Policies in SQLite, shareable across threads. Database failures raise :class:`StorageError`."""

    component = COMPONENT
    migrations = MIGRATIONS

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
        """Store a policy; content already stored under the same hash only bumps ``updated_at``
        and returns the stored row (whatever id it was first stored under).

        Raises :class:`ConflictError` (``policy_conflict``) when ``policy_id`` is stored with a
        different hash, :class:`InvalidInputError` for an unknown status.
        """
        stamp = db.timestamp_text(now, digits=3)
        status = policy_status(status)
        with self._lock, db.transaction(self._conn, self.path):
            same = self._stored_same(policy_id, policy_hash)
            if same is not None:
                self._touch(same.id, stamp)
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
            self._insert(policy)
        return policy

    def get(self, policy_id: str) -> StoredPolicy:
        """The policy with ``policy_id``. Raises :class:`NotFoundError` (``policy_not_found``)."""
        return self._must("id = ?", policy_id, field="policy_id")

    def get_by_hash(self, policy_hash: str) -> StoredPolicy:
        """The policy with ``policy_hash``. Raises :class:`NotFoundError` (``policy_not_found``)."""
        return self._must("hash = ?", policy_hash, field="policy_hash")

    def list(self, status: PolicyStatus | str | None = None) -> builtins.list[StoredPolicy]:
        """Policies newest first, optionally only those with ``status``."""
        sql = _SELECT
        params: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            params = (policy_status(status).value,)
        with self._lock, db.guard(self.path):
            rows = self._conn.execute(sql + " ORDER BY created_at DESC, id", params).fetchall()
        return [_from_row(row) for row in rows]

    def set_status(self, policy_id: str, status: PolicyStatus | str, now: datetime) -> StoredPolicy:
        """Change a policy's status.

        Raises :class:`NotFoundError` (``policy_not_found``) or :class:`InvalidInputError` for an
        unknown status.
        """
        stamp = db.timestamp_text(now, digits=3)
        value = policy_status(status).value
        with self._lock, db.transaction(self._conn, self.path):
            cursor = self._conn.execute(
                "UPDATE policies SET status = ?, updated_at = ? WHERE id = ?", (value, stamp, policy_id)
            )
            if cursor.rowcount == 0:
                raise _not_found("policy_id", policy_id)
        return self.get(policy_id)

    # -------------------------------------------------------------- internals

    def _row(self, where: str, value: str) -> StoredPolicy | None:
        row = self._conn.execute(f"{_SELECT} WHERE {where}", (value,)).fetchone()
        return None if row is None else _from_row(row)

    def _stored_same(self, policy_id: str, policy_hash: str) -> StoredPolicy | None:
        """The row already holding ``policy_hash``; raises ConflictError if ``policy_id`` holds another."""
        same = self._row("hash = ?", policy_hash)
        if same is not None:
            return same
        other = self._row("id = ?", policy_id)
        if other is not None:
            raise ConflictError(
                f"policy {policy_id!r} is already stored with a different hash",
                code="policy_conflict",
                field="policy_id",
                stored_hash=other.hash,
                new_hash=policy_hash,
            )
        return None

    def _must(self, where: str, value: str, *, field: str) -> StoredPolicy:
        with self._lock, db.guard(self.path):
            found = self._row(where, value)
        if found is None:
            raise _not_found(field, value)
        return found

    def _touch(self, policy_id: str, stamp: str) -> None:
        self._conn.execute("UPDATE policies SET updated_at = ? WHERE id = ?", (stamp, policy_id))

    def _insert(self, policy: StoredPolicy) -> None:
        values = [getattr(policy, name) for name in _COLUMNS]
        values[_COLUMNS.index("status")] = policy.status.value
        self._conn.execute(_INSERT, values)


def _from_row(row: sqlite3.Row | tuple[Any, ...]) -> StoredPolicy:
    return StoredPolicy(**dict(zip(_COLUMNS, row, strict=True)))


def policy_status(value: PolicyStatus | str) -> PolicyStatus:
    """``value`` as a status. Raises :class:`InvalidInputError` naming the field and the allowed values."""
    try:
        return PolicyStatus(value)
    except ValueError as exc:
        raise InvalidInputError(
            f"unknown policy status {value!r}", field="status", expected="active, deprecated or draft"
        ) from exc


def _not_found(field: str, value: str) -> NotFoundError:
    return NotFoundError(f"no stored policy with {field} {value!r}", code="policy_not_found", field=field)


# ---------------------------------------------------------------- re-checking stored hashes (pure)


def policy_hash_of(policy_json: str, form_of: str) -> str:
    """The hash of ``policy_json`` in the text form of ``form_of`` (``sha3-256:`` or ``0x``).

    Raises :class:`InvalidInputError` for any other form.
    """
    data = policy_json.encode("utf-8")
    if form_of.startswith("sha3-256:"):
        return sha3_prefixed(data)
    if form_of.startswith("0x"):
        return sha3_hex(data)
    raise InvalidInputError("unknown policy hash form", field="hash", expected="sha3-256: or 0x prefix")


def ir_hash_of(ir: dict[str, Any]) -> str:
    """IR hash rule: compact JSON in the IR's own key order with ``ir_hash`` set to ``""``, SHA3-256."""
    blank = {**ir, "ir_hash": ""} if "ir_hash" in ir else {**ir}
    text = json.dumps(blank, separators=(",", ":"), ensure_ascii=False)
    return sha3_prefixed(text.encode("utf-8"))


def verify_stored(policy: StoredPolicy) -> builtins.list[str]:
    """Every problem with a stored policy's hashes; empty when policy and IR match their hashes."""
    try:
        expected = policy_hash_of(policy.policy_json, policy.hash)
    except InvalidInputError:
        return [f"policy {policy.id}: hash {policy.hash[:20]!r} has an unknown form"]
    problems = []
    if not digests_equal(expected, policy.hash):
        problems.append(f"policy {policy.id}: policy_json does not hash to {policy.hash}")
    if policy.ir_json is not None or policy.ir_hash is not None:
        problems.extend(_ir_problems(policy))
    return problems


def _ir_problems(policy: StoredPolicy) -> builtins.list[str]:
    label = f"policy {policy.id}"
    if policy.ir_json is None or policy.ir_hash is None:
        return [f"{label}: ir_json and ir_hash must be stored together"]
    try:
        ir = json.loads(policy.ir_json)
    except json.JSONDecodeError as exc:
        return [f"{label}: ir_json is not JSON ({exc.msg} at line {exc.lineno})"]
    if not isinstance(ir, dict):
        return [f"{label}: ir_json is not a JSON object"]
    problems = []
    if not digests_equal(ir_hash_of(ir), policy.ir_hash):
        problems.append(f"{label}: ir_json does not hash to {policy.ir_hash}")
    if ir.get("ir_hash") != policy.ir_hash:
        problems.append(f"{label}: the IR's own ir_hash differs from the stored ir_hash")
    if "policy_hash" in ir and ir["policy_hash"] != policy.hash:
        problems.append(f"{label}: the IR was compiled from a different policy hash")
    return problems
