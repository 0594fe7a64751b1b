"""SQLite plumbing shared by the stores: connections, transactions, migrations, integrity checks.

This module owns the one place where ``sqlite3`` errors become :class:`StorageError`:
"database is locked/busy" → ``transient=True`` (worth a retry); corruption ("file is not a
database", "malformed") and every other SQLite failure → ``transient=False``. Stores wrap their
SQL in :func:`guard` and never catch ``sqlite3`` errors themselves.

Connections run in autocommit mode; writes go through :func:`transaction` (``BEGIN IMMEDIATE``).
Schema versions live in ``schema_migrations(version INTEGER PRIMARY KEY, applied_at TEXT,
component TEXT)``; one database file belongs to one component.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Self

from core.errors import InvalidInputError, NotFoundError, StorageError

BUSY_TIMEOUT_MS = 5000

_TRANSIENT_NAMES = {"SQLITE_BUSY", "SQLITE_LOCKED"}
_TRANSIENT_TEXT = ("database is locked", "database is busy", "database table is locked")
_CORRUPT_NAMES = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
_CORRUPT_TEXT = ("file is not a database", "malformed", "corrupt")

_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL, component TEXT NOT NULL)"
)
_SQLITE_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"


def timestamp_text(now: datetime, *, digits: int = 6) -> str:
    """RFC 3339 UTC text with ``digits`` (3 or 6) fractional digits and ``Z``.

    Raises :class:`InvalidInputError` for a naive datetime.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInputError("timestamp must be timezone-aware", field="now", expected="UTC datetime")
    text = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text[: len(text) - (6 - digits)] + "Z"


def translate(exc: sqlite3.Error, path: str | Path) -> StorageError:
    """The one mapping from a ``sqlite3`` error to :class:`StorageError` (transient or not)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    lowered = text.lower()
    if name in _TRANSIENT_NAMES or any(t in lowered for t in _TRANSIENT_TEXT):
        return StorageError(
            f"database {path} is locked by another writer: {text}",
            transient=True,
            code="storage_busy",
            file=str(path),
        )
    if name in _CORRUPT_NAMES or any(t in lowered for t in _CORRUPT_TEXT):
        return StorageError(
            f"database {path} is corrupt or not an SQLite database: {text}",
            transient=False,
            code="storage_corrupt",
            file=str(path),
        )
    return StorageError(
        f"database {path} failed: {text}", transient=False, file=str(path), sqlite=name or None
    )


@contextmanager
def guard(path: str | Path) -> Iterator[None]:
    """Run a block of SQLite calls; any ``sqlite3.Error`` leaves as a translated :class:`StorageError`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate(exc, path) from exc


def connect(
    path: str | Path, *, create: bool = True, busy_timeout_ms: int = BUSY_TIMEOUT_MS
) -> sqlite3.Connection:
    """Open ``path`` in WAL mode (synchronous NORMAL, foreign keys on, busy timeout).

    The connection is in autocommit mode and may be shared across threads if the caller locks.
    Raises :class:`NotFoundError` when ``create`` is false and the file is missing, and
    :class:`StorageError` (non-transient) when the file is not a usable database.
    """
    target = Path(path)
    if not target.exists():
        if not create:
            raise NotFoundError(
                f"database {target} does not exist", code="database_not_found", file=str(target)
            )
        target.parent.mkdir(parents=True, exist_ok=True)
    with guard(target):
        conn = sqlite3.connect(
            target, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error:
            conn.close()
            raise
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection, path: str | Path) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; rolls back on any exception. SQLite errors are translated."""
    with guard(path):
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def split_statements(sql: str) -> list[str]:
    """Split a migration script into complete SQL statements (semicolons inside strings are safe)."""
    statements: list[str] = []
    buffer = ""
    for piece in sql.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip(" \t\r\n;"):
        raise InvalidInputError("migration ends in an incomplete SQL statement", found=buffer.strip()[:80])
    return statements


def _applied(conn: sqlite3.Connection) -> dict[int, str]:
    rows = conn.execute("SELECT version, component FROM schema_migrations").fetchall()
    return {int(version): str(component) for version, component in rows}


def migrate(
    conn: sqlite3.Connection, component: str, migrations: list[str], *, now: datetime | None = None
) -> int:
    """Apply ``migrations[i]`` as version ``i + 1`` in order, each in its own transaction.

    Already-applied versions are skipped, so re-running is a no-op. ``applied_at`` is ``now`` when
    given, else SQLite's clock. Returns the schema version afterwards. Raises :class:`StorageError`
    when the file belongs to another component or is newer than this code knows.
    """
    path = _db_path(conn)
    with guard(path):
        conn.execute(_MIGRATIONS_TABLE)
        applied = _applied(conn)
    _check_owner(path, component, applied, len(migrations))
    for version, script in enumerate(migrations, start=1):
        if version not in applied:
            _apply(conn, path, component, version, script, now)
    return schema_version(conn)


def _check_owner(path: str, component: str, applied: dict[int, str], known: int) -> None:
    foreign = sorted({c for c in applied.values() if c != component})
    if foreign:
        raise StorageError(
            f"database {path} holds the {foreign[0]!r} schema, not {component!r}",
            code="storage_wrong_schema",
            file=path,
        )
    if applied and max(applied) > known:
        raise StorageError(
            f"database {path} has {component} schema version {max(applied)}, newer than this code ({known})",
            code="storage_schema_too_new",
            file=path,
        )


def _apply(
    conn: sqlite3.Connection, path: str, component: str, version: int, script: str, now: datetime | None
) -> None:
    with transaction(conn, path):
        for statement in split_statements(script):
            conn.execute(statement)
        if now is None:
            conn.execute(
                f"INSERT INTO schema_migrations(version, applied_at, component) VALUES (?, {_SQLITE_NOW}, ?)",  # noqa: S608
                (version, component),
            )
        else:
            conn.execute(
                "INSERT INTO schema_migrations(version, applied_at, component) VALUES (?, ?, ?)",
                (version, timestamp_text(now), component),
            )


def schema_version(conn: sqlite3.Connection) -> int:
    """The highest applied migration version, 0 for a database without migrations."""
    with guard(_db_path(conn)):
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchone()
        if exists is None:
            return 0
        row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def integrity_check(path: str | Path) -> list[str]:
    """Problems reported by ``PRAGMA integrity_check`` on ``path``; empty when the database is sound.

    A missing file or a file that is not a database is reported as a problem, not raised; only a
    locked database raises (:class:`StorageError`, transient).
    """
    target = Path(path)
    if not target.is_file():
        return [f"database file {target} is missing"]
    try:
        with closing(sqlite3.connect(f"file:{target}?mode=rw", uri=True, isolation_level=None)) as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.Error as exc:
        error = translate(exc, target)
        if error.transient:
            raise error from exc
        return [error.message]
    problems = [str(row[0]) for row in rows]
    return [] if problems == ["ok"] else problems


def _db_path(conn: sqlite3.Connection) -> str:
    with guard("<connection>"):
        row = conn.execute("PRAGMA database_list").fetchone()
    return str(row[2]) if row and row[2] else ":memory:"


class SqliteStore:
    """One SQLite file with its component's migrations applied; shareable across threads (one lock).

    Subclasses set ``component`` and ``migrations``. Raises :class:`StorageError` like :func:`connect`.
    """

    component: ClassVar[str]
    migrations: ClassVar[list[str]]

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = connect(self.path, busy_timeout_ms=busy_timeout_ms)
        migrate(self._conn, self.component, self.migrations)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
