"""The PostgreSQL state as backup members, and the atomic switch a restore makes (ADR 0015).

Backup: ONE ``REPEATABLE READ READ ONLY`` transaction ``COPY``-s each CAP table to a CSV file with a header
line (:data:`TABLES`, every row as of one snapshot) and reads the schema versions and sequences. BYTEA
columns hold UTF-8 documents (audit lines, keyring versions and links, lists) and are dumped as their text,
so the backup's private-key scan reads every byte as stored, never a hex encoding of it.

Restore: the CSV files are loaded into a fresh *staging* schema on the same database, built by the same
migrations as the live tables; checks read it there. :func:`switch` then, in one transaction under every
writer's advisory lock, moves the live tables into a *before* schema and the staged ones into the live
schema (``ALTER TABLE … SET SCHEMA``: no data is copied, the old state stays whole for
:func:`switch_back`), and sets the sequences so that no id the live database handed out is handed out
again. Other processes' connections need nothing: PostgreSQL re-resolves a cached plan or prepared
statement by name after DDL on a table it used (tests/pg/test_pg_backup.py proves it with statements
prepared in a second process before the switch).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

from core.backup.manifest import PgSnapshotInfo
from core.errors import ConflictError, IntegrityError
from core.store.postgres import audit, keyring, policy_store, registry
from core.store.postgres.db import CONNECT_TIMEOUT_S, MIGRATION_LOCK, Database, database, guard
from core.store.url import DatabaseUrl

Conn = psycopg.Connection[tuple[Any, ...]]
BLOCK: Final = 1 << 20
LOCK_TIMEOUT: Final = "30s"
RESTORE_LOCK: Final = 0x0CA9_0005
"""Session advisory lock: one restore of a database at a time."""
STAGING_PREFIX: Final = "cap_restore_"
BEFORE_PREFIX: Final = "cap_before_"


@dataclass(frozen=True)
class Table:
    name: str
    component: str
    documents: tuple[str, ...] = ()  # BYTEA columns holding UTF-8 documents, dumped as text


TABLES: Final = (
    Table("registry_meta", "registry"),
    Table("registry_entries", "registry"),
    Table("policies", "policy_store"),
    Table("audit_events", "audit", ("line",)),
    Table("keyring_versions", "keyring", ("document",)),
    Table("keyring_links", "keyring", ("link",)),
    Table("keyring_floor", "keyring"),
    Table("installed_lists", "lists", ("document",)),
)
KEYRING_TABLES: Final = frozenset({"keyring_versions", "keyring_links", "keyring_floor"})
REGISTRY_SEQUENCE: Final = "registry_entry_seq"
LISTS_SEQUENCE: Final = "installed_lists_number_seq"


def migrations() -> dict[str, list[str]]:
    """Every component's migrations, as the stores apply them."""
    from core.store.lists import PgListsStore

    return {
        "registry": registry.MIGRATIONS,
        "policy_store": policy_store.MIGRATIONS,
        "audit": audit.MIGRATIONS,
        "keyring": keyring.MIGRATIONS,
        "lists": PgListsStore.MIGRATIONS,
    }


def member(table: str) -> str:
    """The archive path of ``table``'s CSV."""
    return f"postgresql/{table}.csv"


def prepared(url: DatabaseUrl) -> Database:
    """The database with every component migrated (a fresh database gets empty tables)."""
    db = database(url)
    for component, scripts in migrations().items():
        db.ensure(component, scripts)
    return db


def _columns(conn: Conn, schema: str, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
        (sql.Identifier(schema, table).as_string(conn),),
    ).fetchall()
    return [str(r[0]) for r in rows]


def _last_value(conn: Conn, schema: str, sequence: str) -> int:
    """The highest value ``sequence`` has handed out (0: none)."""
    query = sql.SQL("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {}").format(
        sql.Identifier(schema, sequence)
    )
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def dump(url: DatabaseUrl, dest: Path) -> tuple[list[Path], PgSnapshotInfo, int | None]:
    """Write every CAP table as ``dest/postgresql/<table>.csv`` from one snapshot; returns the files, the
    snapshot info and the keyring head version (None: no keyring). Raises :class:`StorageError`, or
    :class:`IntegrityError` when a document column is not UTF-8."""
    db = prepared(url)
    (dest / "postgresql").mkdir(parents=True, exist_ok=True)
    files = []
    with db.transaction() as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        schema = str(_one(conn, "SELECT current_schema()"))
        versions = conn.execute("SELECT component, MAX(version) FROM schema_migrations GROUP BY component")
        schema_versions = {str(c): int(v) for c, v in versions}
        for table in TABLES:
            files.append(_dump_table(conn, schema, table, dest / member(table.name)))
        head = _one(conn, "SELECT MAX(version) FROM keyring_versions")
        info = PgSnapshotInfo(
            server_version=str(_one(conn, "SHOW server_version")),
            schema_versions=schema_versions,
            sequences={s: _last_value(conn, schema, s) for s in (REGISTRY_SEQUENCE, LISTS_SEQUENCE)},
        )
    return files, info, None if head is None else int(head)


def _one(conn: Conn, query: str) -> Any:
    row = conn.execute(query).fetchone()
    return None if row is None else row[0]


def _dump_table(conn: Conn, schema: str, table: Table, path: Path) -> Path:
    columns = _columns(conn, schema, table.name)
    picks = [
        sql.SQL("convert_from({c}, 'UTF8') AS {c}").format(c=sql.Identifier(c))
        if c in table.documents
        else sql.Identifier(c)
        for c in columns
    ]
    copy = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT WITH (FORMAT csv, HEADER)").format(
        sql.SQL(", ").join(picks), sql.Identifier(schema, table.name)
    )
    try:
        with open(path, "wb") as out, conn.cursor().copy(copy) as stream:
            for block in stream:
                out.write(block)
    except psycopg.errors.CharacterNotInRepertoire as exc:
        raise IntegrityError(
            f"table {table.name} holds a document that is not UTF-8", field=table.name
        ) from exc
    return path


# --- restore -----------------------------------------------------------------------------------------


def schema_names(backup_id: str, stamp: str) -> tuple[str, str]:
    """The staging and before schemas of one restore (short, safe identifiers)."""
    tag = hashlib.sha3_256(f"{backup_id}\n{stamp}".encode()).hexdigest()[:16]
    return STAGING_PREFIX + tag, BEFORE_PREFIX + tag


def live_schema(url: DatabaseUrl) -> str:
    """The schema the stores use (the connection's ``search_path``). Raises :class:`StorageError`."""
    with database(url).transaction() as conn:
        return str(_one(conn, "SELECT current_schema()"))


def drop_staging_leftovers(url: DatabaseUrl) -> list[str]:
    """Drop the staging schemas of interrupted restores (never the live or a before schema)."""
    with database(url).transaction() as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (STAGING_PREFIX,)
        ).fetchall()
        for (name,) in rows:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(str(name))))
    return [str(r[0]) for r in rows]


def drop_schema(url: DatabaseUrl, schema: str) -> None:
    with database(url).transaction() as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def load_staging(url: DatabaseUrl, schema: str, source: Path) -> dict[str, int]:
    """Create ``schema`` with the code's tables and load ``source/postgresql/<table>.csv`` into them in one
    transaction; returns each table's row count. Raises :class:`IntegrityError`
    (``restore_schema_mismatch`` when a file's header is not the table's columns) or :class:`StorageError`."""
    counts = {}
    with prepared(url).transaction() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        for scripts in migrations().values():
            for script in scripts:
                conn.execute(script.encode())
        for table in TABLES:
            counts[table.name] = _load_table(conn, schema, table, source / member(table.name))
    return counts


def _load_table(conn: Conn, schema: str, table: Table, path: Path) -> int:
    name = sql.Identifier(schema, table.name)
    columns = _columns(conn, schema, table.name)
    with open(path, encoding="utf-8", newline="") as fh:
        header = next(csv.reader([fh.readline()]), [])
    if header != columns:
        raise IntegrityError(
            f"backup table {table.name} has columns {header}, this code's table has {columns}",
            code="restore_schema_mismatch",
            file=member(table.name),
        )
    conn.execute(sql.SQL("TRUNCATE {}").format(name))
    for column in table.documents:
        conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE text").format(name, sql.Identifier(column)))
    copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER)").format(
        name, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    try:
        with open(path, "rb") as fh, conn.cursor().copy(copy) as stream:
            while block := fh.read(BLOCK):
                stream.write(block)
    except psycopg.errors.DataError as exc:
        raise IntegrityError(
            f"backup table {table.name} does not load: {exc}", code="backup_corrupt", file=member(table.name)
        ) from exc
    for column in table.documents:
        conn.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {c} TYPE bytea USING convert_to({c}, 'UTF8')").format(
                name, c=sql.Identifier(column)
            )
        )
    return int(_one(conn, sql.SQL("SELECT COUNT(*) FROM {}").format(name).as_string(conn)))


def staged_rows(
    url: DatabaseUrl, schema: str, query: str, params: tuple[Any, ...] = ()
) -> Iterator[tuple[Any, ...]]:
    """Rows of ``query`` run with ``schema`` first on the search path, streamed (a server-side cursor)."""
    with database(url).transaction() as conn:
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        with conn.cursor(name="cap_restore_check") as cursor:
            cursor.itersize = 2000
            cursor.execute(query.encode(), params)
            yield from cursor


@dataclass(frozen=True)
class Switched:
    """What :func:`switch` set: the sequences' next values start above these, and the keyring floor."""

    registry_high_water: int
    lists_high_water: int
    keyring_floor: int | None


def _writer_locks(conn: Conn) -> None:
    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
    for key in (MIGRATION_LOCK, policy_store.WRITE_LOCK, audit.CHAIN_LOCK, keyring.KEYRING_LOCK):
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))


def _move(conn: Conn, tables: list[str], source: str, target: str) -> None:
    for table in tables:
        conn.execute(
            sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                sql.Identifier(source, table), sql.Identifier(target)
            )
        )


def _floor(conn: Conn, schema: str, *, rollback: bool, live: tuple[int | None, int | None]) -> int | None:
    """The restored rollback floor, as for files: the backup's head when rolling back on purpose, else the
    highest version either side has seen."""
    head = _one(
        conn,
        sql.SQL("SELECT MAX(version) FROM {}")
        .format(sql.Identifier(schema, "keyring_versions"))
        .as_string(conn),
    )
    staged_floor = _one(
        conn,
        sql.SQL("SELECT MAX(version) FROM {}")
        .format(sql.Identifier(schema, "keyring_floor"))
        .as_string(conn),
    )
    if head is None:
        return None
    floor = int(head) if rollback else max(int(head), *(v or 0 for v in (*live, staged_floor)))
    conn.execute(
        sql.SQL(
            "INSERT INTO {}(id, version) VALUES (TRUE, %s) "
            "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version"
        ).format(sql.Identifier(schema, "keyring_floor")),
        (floor,),
    )
    return floor


def switch(
    url: DatabaseUrl,
    staging: str,
    before: str,
    *,
    keep_keyring: bool,
    rollback: bool,
    backup_sequences: dict[str, int],
) -> Switched:
    """Make the staged tables the live ones in ONE transaction: writers' advisory locks and the tables'
    locks taken (waiting at most :data:`LOCK_TIMEOUT`), live tables moved to ``before``, staged ones into
    the live schema, sequences set so that no id is handed out twice, the keyring floor set. With
    ``keep_keyring`` (``--keyring merge``) the live keyring tables stay. Raises :class:`StorageError`; on
    any failure nothing changed."""
    tables = [t.name for t in TABLES if not (keep_keyring and t.name in KEYRING_TABLES)]
    with database(url).transaction() as conn:
        _writer_locks(conn)
        live = str(_one(conn, "SELECT current_schema()"))
        used = {s: _last_value(conn, live, s) for s in (REGISTRY_SEQUENCE, LISTS_SEQUENCE)}
        live_ring = (
            _one(conn, "SELECT MAX(version) FROM keyring_versions"),
            _one(conn, "SELECT MAX(version) FROM keyring_floor"),
        )
        floor = None if keep_keyring else _floor(conn, staging, rollback=rollback, live=live_ring)
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(before)))
        _move(conn, tables, live, before)
        _move(conn, tables, staging, live)
        staged_max = _one(conn, "SELECT MAX(substr(id, 7)::bigint) FROM registry_entries") or 0
        marks = {
            REGISTRY_SEQUENCE: max(
                used[REGISTRY_SEQUENCE], backup_sequences.get(REGISTRY_SEQUENCE, 0), int(staged_max)
            ),
            LISTS_SEQUENCE: max(
                used[LISTS_SEQUENCE],
                backup_sequences.get(LISTS_SEQUENCE, 0),
                int(_one(conn, "SELECT COALESCE(MAX(number), 0) FROM installed_lists")),
            ),
        }
        for sequence, mark in marks.items():
            if mark > 0:
                conn.execute(
                    "SELECT setval(%s::regclass, %s)", (sql.Identifier(live, sequence).as_string(conn), mark)
                )
    return Switched(marks[REGISTRY_SEQUENCE], marks[LISTS_SEQUENCE], floor)


def switch_back(url: DatabaseUrl, staging: str, before: str) -> bool:
    """Undo :func:`switch` in one transaction (the restored tables back to ``staging``, the previous ones
    live); False when there is nothing to undo. Raises :class:`StorageError`."""
    with database(url).transaction() as conn:
        _writer_locks(conn)
        live = str(_one(conn, "SELECT current_schema()"))
        found = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r'",
            (before,),
        ).fetchall()
        tables = [t.name for t in TABLES if (t.name,) in found]
        if not tables:
            return False
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(staging)))
        _move(conn, tables, live, staging)
        _move(conn, tables, before, live)
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(before)))
    return True


@contextmanager
def restore_lock(url: DatabaseUrl) -> Iterator[None]:
    """Hold the session advisory lock :data:`RESTORE_LOCK` on a connection of its own.

    Raises :class:`ConflictError` ``restore_in_progress`` when another restore holds it."""
    with (
        guard(url),
        psycopg.connect(
            url.conninfo.get_secret_value(), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        ) as conn,
    ):
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (RESTORE_LOCK,)).fetchone()
        if not row or not row[0]:
            raise ConflictError(
                f"another restore of {url.redacted} is running",
                code="restore_in_progress",
                database=url.redacted,
            )
        yield
