"""PostgreSQL plumbing shared by the stores: one small connection pool per process and URL, transactions,
migrations and the one place where ``psycopg`` errors become :class:`StorageError`.

Transient (worth a retry): the server cannot be reached or went away (SQLSTATE class 08, 57P01–57P03, no
SQLSTATE at connect), too many connections (53300), a serialization failure (40001), a deadlock (40P01), and
no pooled connection free within the timeout. Every other failure is not. Messages name the database by its
redacted URL and never carry the password.

Schema versions live in ``schema_migrations(component, version, applied_at)``, as in SQLite, except that one
database holds every component: a component's rows are its own, a component this code does not know means the
database belongs to something else (``storage_wrong_schema``), and a version above the code's is
``storage_schema_too_new``. Migrations run under a transaction-scoped advisory lock, so nodes starting at once
apply each version exactly once.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import psycopg
import psycopg_pool

from core.errors import StorageError
from core.store.url import DatabaseUrl

POOL_MIN: Final = 1
POOL_MAX: Final = 4
POOL_TIMEOUT_S: Final = 10.0
CONNECT_TIMEOUT_S: Final = 5
KNOWN_COMPONENTS: Final = frozenset({"registry", "policy_store", "audit", "keyring", "lists"})
MIGRATION_LOCK: Final = 0x0CA9_0001
"""``pg_advisory_xact_lock`` key serialising schema migrations across processes and nodes."""

_TRANSIENT_STATES: Final = frozenset({"40001", "40P01", "53300", "57P01", "57P02", "57P03"})
_MIGRATIONS_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL, "
    "applied_at TEXT NOT NULL, PRIMARY KEY (component, version))"
)
_NOW: Final = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


def translate(exc: BaseException, url: DatabaseUrl) -> StorageError:
    """The one mapping from a ``psycopg``/pool error to :class:`StorageError` (transient or not)."""
    secret = url.conninfo.get_secret_value()
    text = _scrub(str(exc).strip() or type(exc).__name__, secret)
    where = url.redacted
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return StorageError(
            f"database {where}: no connection free within {POOL_TIMEOUT_S:g} s: {text}",
            transient=True,
            code="storage_busy",
            database=where,
        )
    state = getattr(exc, "sqlstate", None)
    if (state is None and isinstance(exc, psycopg.OperationalError)) or (state or "").startswith("08"):
        return StorageError(
            f"database {where} is unreachable: {text}",
            transient=True,
            code="storage_unavailable",
            database=where,
        )
    if state in _TRANSIENT_STATES:
        return StorageError(
            f"database {where} is busy: {text}",
            transient=True,
            code="storage_busy",
            database=where,
            sqlstate=state,
        )
    return StorageError(f"database {where} failed: {text}", transient=False, database=where, sqlstate=state)


def _scrub(text: str, secret: str) -> str:
    """``text`` without the URL or its password, whatever the driver put into the message."""
    from urllib.parse import unquote, urlsplit

    if secret:
        text = text.replace(secret, "<CAP_DATABASE_URL>")
        password = urlsplit(secret).password
        for form in {password, unquote(password or "")} - {None, ""}:
            text = text.replace(str(form), "***")
    return text


@contextmanager
def guard(url: DatabaseUrl) -> Iterator[None]:
    """Run a block of ``psycopg`` calls; a driver or pool error leaves as a :class:`StorageError`."""
    try:
        yield
    except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
        raise translate(exc, url) from exc


class Database:
    """One PostgreSQL database for this process: a small pool and the components already migrated."""

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._migrated: set[str] = set()
        self._pool: psycopg_pool.ConnectionPool | None = None

    def _open_pool(self) -> psycopg_pool.ConnectionPool:
        if self._pool is None:
            with guard(self.url):  # one direct connection first: its failure says why (refused, auth, …)
                psycopg.connect(
                    self.url.conninfo.get_secret_value(), connect_timeout=CONNECT_TIMEOUT_S
                ).close()
            self._pool = psycopg_pool.ConnectionPool(
                self.url.conninfo.get_secret_value(),
                min_size=POOL_MIN,
                max_size=POOL_MAX,
                timeout=POOL_TIMEOUT_S,
                kwargs={"connect_timeout": CONNECT_TIMEOUT_S},
                check=psycopg_pool.ConnectionPool.check_connection,  # no dead socket (failover) is lent out
                name="cap",
                open=True,
            )
        return self._pool

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """A pooled connection in one transaction: committed when the block ends, rolled back if it raises.
        Raises :class:`StorageError` for any database failure."""
        with self._lock:
            pool = self._open_pool()
        with guard(self.url), pool.connection() as conn:
            yield conn

    @contextmanager
    def statements(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """A pooled connection in autocommit mode: each statement is its own transaction (no BEGIN/COMMIT
        round trips), for work that needs no more. Raises :class:`StorageError`."""
        with self._lock:
            pool = self._open_pool()
        with guard(self.url), pool.connection() as conn:
            conn.autocommit = True
            try:
                yield conn
            finally:
                conn.autocommit = False

    def ensure(self, component: str, migrations: list[str]) -> None:
        """Migrate ``component`` once per process. Raises :class:`StorageError` (wrong or too new schema)."""
        if component in self._migrated:
            return
        with self.transaction() as conn:
            migrate(conn, self.url, component, migrations)
        self._migrated.add(component)

    def schema_versions(self) -> dict[str, int]:
        """Each component's applied version (readiness); creates nothing. Raises :class:`StorageError`."""
        with self.transaction() as conn:
            exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
            if not exists or not exists[0]:
                return {}
            rows = conn.execute("SELECT component, MAX(version) FROM schema_migrations GROUP BY component")
            return {str(c): int(str(v)) for c, v in rows}

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
            self._pool = None
            self._migrated.clear()


def migrate(
    conn: psycopg.Connection[tuple[Any, ...]], url: DatabaseUrl, component: str, migrations: list[str]
) -> int:
    """Apply ``migrations[i]`` as ``component``'s version ``i + 1`` in the caller's transaction, under the
    migration lock. Returns the version afterwards. Raises :class:`StorageError` when the database holds a
    foreign schema or a newer one than this code knows."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
    conn.execute(_MIGRATIONS_TABLE)
    try:
        rows = conn.execute("SELECT component, version FROM schema_migrations").fetchall()
    except psycopg.errors.UndefinedColumn as exc:  # e.g. Rails' schema_migrations(version)
        raise StorageError(
            f"database {url.redacted} holds another application's schema_migrations table",
            code="storage_wrong_schema",
            database=url.redacted,
        ) from exc
    applied = {int(str(v)) for c, v in rows if c == component}
    foreign = sorted({str(c) for c, _ in rows} - KNOWN_COMPONENTS)
    if foreign:
        raise StorageError(
            f"database {url.redacted} holds the {foreign[0]!r} schema, not CAP Verifier's",
            code="storage_wrong_schema",
            database=url.redacted,
        )
    if applied and max(applied) > len(migrations):
        raise StorageError(
            f"database {url.redacted} has {component} schema version {max(applied)}, "
            f"newer than this code ({len(migrations)})",
            code="storage_schema_too_new",
            database=url.redacted,
        )
    for version, script in enumerate(migrations, start=1):
        if version not in applied:
            conn.execute(script)  # fixed migration text without parameters: several statements at once
            conn.execute(
                f"INSERT INTO schema_migrations(component, version, applied_at) VALUES (%s, %s, {_NOW})",  # noqa: S608
                (component, version),
            )
    return max([len(migrations), *applied]) if migrations else 0


_DATABASES: dict[tuple[int, str], Database] = {}
_DATABASES_LOCK = threading.Lock()


def database(url: DatabaseUrl) -> Database:
    """This process's :class:`Database` for ``url`` (a forked child gets its own pool, never its parent's)."""
    key = (os.getpid(), url.conninfo.get_secret_value())
    with _DATABASES_LOCK:
        found = _DATABASES.get(key)
        if found is None:
            found = _DATABASES[key] = Database(url)
        return found


@atexit.register
def close_all() -> None:
    """Close every pool this process opened (at exit; tests call it to drop a database)."""
    with _DATABASES_LOCK:
        mine = [db for (pid, _), db in _DATABASES.items() if pid == os.getpid()]
        _DATABASES.clear()
    for db in mine:
        db.close()
