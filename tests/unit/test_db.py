"""core.db: connections, migrations, the one sqlite3 → StorageError translation, integrity checks."""

import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pytest

from core import db
from core.errors import InvalidInputError, NotFoundError, StorageError

MIGRATIONS = [
    "CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
    "ALTER TABLE things ADD COLUMN note TEXT; INSERT INTO things(name, note) VALUES ('a;b', 'x');",
]
NOW = datetime(2025, 11, 27, 9, 0, 0, 500000, tzinfo=UTC)


@pytest.fixture
def conn(tmp_path):
    connection = db.connect(tmp_path / "t.sqlite")
    yield connection
    connection.close()


def test_connect_sets_wal_normal_foreign_keys_and_busy_timeout(conn):
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == db.BUSY_TIMEOUT_MS


def test_connect_without_create_refuses_a_missing_file(tmp_path):
    with pytest.raises(NotFoundError) as info:
        db.connect(tmp_path / "missing.sqlite", create=False)
    assert info.value.code == "database_not_found"
    assert not (tmp_path / "missing.sqlite").exists()


def test_migrations_are_recorded_and_rerunning_is_a_no_op(conn):
    assert db.schema_version(conn) == 0
    assert db.migrate(conn, "things", MIGRATIONS, now=NOW) == 2
    rows = conn.execute(
        "SELECT version, applied_at, component FROM schema_migrations ORDER BY version"
    ).fetchall()
    assert rows == [
        (1, "2025-11-27T09:00:00.500000Z", "things"),
        (2, "2025-11-27T09:00:00.500000Z", "things"),
    ]
    assert db.migrate(conn, "things", MIGRATIONS, now=NOW + timedelta(days=1)) == 2
    assert conn.execute("SELECT COUNT(*) FROM things").fetchone()[0] == 1
    assert (
        conn.execute("SELECT applied_at FROM schema_migrations WHERE version = 2")
        .fetchone()[0]
        .startswith("2025-11-27T09")
    )


def test_migration_without_now_uses_the_database_clock(conn):
    db.migrate(conn, "things", MIGRATIONS[:1])
    applied_at = conn.execute("SELECT applied_at FROM schema_migrations").fetchone()[0]
    assert applied_at.endswith("Z") and "T" in applied_at


def test_new_migrations_apply_on_top_of_old_ones(conn):
    assert db.migrate(conn, "things", MIGRATIONS[:1]) == 1
    assert db.migrate(conn, "things", MIGRATIONS) == 2
    assert conn.execute("SELECT name FROM things").fetchone()[0] == "a;b"


def test_a_failing_migration_rolls_back_completely(conn):
    broken = [MIGRATIONS[0], "CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);"]
    with pytest.raises(StorageError) as info:
        db.migrate(conn, "things", broken)
    assert not info.value.transient
    assert db.schema_version(conn) == 1
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchone() is None


@pytest.mark.parametrize(
    ("first", "second", "code"),
    [
        pytest.param(
            ("things", MIGRATIONS), ("other", MIGRATIONS), "storage_wrong_schema", id="wrong_component"
        ),
        pytest.param(
            ("things", MIGRATIONS), ("things", MIGRATIONS[:1]), "storage_schema_too_new", id="too_new"
        ),
    ],
)
def test_migrate_refuses_a_database_it_does_not_own(conn, first, second, code):
    db.migrate(conn, *first)
    with pytest.raises(StorageError) as info:
        db.migrate(conn, *second)
    assert info.value.code == code
    assert not info.value.transient


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        pytest.param("CREATE TABLE a (x);", ["CREATE TABLE a (x);"], id="one"),
        pytest.param(
            "CREATE TABLE a (x); CREATE TABLE b (y)",
            ["CREATE TABLE a (x);", "CREATE TABLE b (y);"],
            id="two_without_final_semicolon",
        ),
        pytest.param(
            "INSERT INTO a VALUES ('x;y');", ["INSERT INTO a VALUES ('x;y');"], id="semicolon_in_string"
        ),
        pytest.param("  \n ; ", [], id="empty"),
    ],
)
def test_split_statements(script, expected):
    assert db.split_statements(script) == expected


def test_garbage_file_is_a_non_transient_storage_error_with_a_clear_message(tmp_path):
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"this is definitely not an sqlite database\n" * 200)
    with pytest.raises(StorageError) as info:
        db.connect(path)
    assert info.value.transient is False
    assert info.value.code == "storage_corrupt"
    assert "corrupt or not an SQLite database" in info.value.message
    assert str(path) in info.value.message
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


def test_locked_database_is_a_transient_storage_error(tmp_path):
    path = tmp_path / "locked.sqlite"
    holder = db.connect(path)
    db.migrate(holder, "things", MIGRATIONS[:1])
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO things(name) VALUES ('held')")
    waiter = db.connect(path, busy_timeout_ms=50)
    try:
        with pytest.raises(StorageError) as info, db.transaction(waiter, path):
            waiter.execute("INSERT INTO things(name) VALUES ('blocked')")
        assert info.value.transient is True
        assert info.value.code == "storage_busy"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        waiter.close()


@pytest.mark.parametrize(
    ("message", "transient", "code"),
    [
        pytest.param("database is locked", True, "storage_busy", id="locked"),
        pytest.param("database table is locked", True, "storage_busy", id="table_locked"),
        pytest.param("file is not a database", False, "storage_corrupt", id="not_a_db"),
        pytest.param("database disk image is malformed", False, "storage_corrupt", id="malformed"),
        pytest.param("no such table: x", False, "storage_error", id="other"),
    ],
)
def test_translate_table(message, transient, code):
    error = db.translate(sqlite3.OperationalError(message), "x.sqlite")
    assert (error.transient, error.code) == (transient, code)


def test_transaction_rolls_back_on_error(conn):
    db.migrate(conn, "things", MIGRATIONS[:1])
    with pytest.raises(RuntimeError), db.transaction(conn, "t"):
        conn.execute("INSERT INTO things(name) VALUES ('gone')")
        raise RuntimeError("boom")
    assert conn.execute("SELECT COUNT(*) FROM things").fetchone()[0] == 0


def test_integrity_check_passes_a_sound_database(tmp_path):
    path = tmp_path / "ok.sqlite"
    conn = db.connect(path)
    db.migrate(conn, "things", MIGRATIONS)
    conn.close()
    assert db.integrity_check(path) == []


def test_integrity_check_reports_missing_and_garbage_files(tmp_path):
    assert "missing" in db.integrity_check(tmp_path / "nope.sqlite")[0]
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"\x00garbage" * 1000)
    problems = db.integrity_check(garbage)
    assert len(problems) == 1 and "not an SQLite database" in problems[0]


def test_integrity_check_reports_a_damaged_page(tmp_path):
    path = tmp_path / "damaged.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("CREATE INDEX t_v ON t(v)")
    conn.executemany("INSERT INTO t(v) VALUES (?)", [(f"value-{i:05d}" * 4,) for i in range(2000)])
    conn.commit()
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    data[page_size * 3 : page_size * 3 + 512] = b"\xff" * 512
    path.write_bytes(bytes(data))
    assert db.integrity_check(path) != []


@pytest.mark.parametrize(
    ("now", "digits", "text"),
    [
        pytest.param(NOW, 6, "2025-11-27T09:00:00.500000Z", id="micros"),
        pytest.param(NOW, 3, "2025-11-27T09:00:00.500Z", id="millis"),
        pytest.param(
            datetime(2025, 11, 27, 11, 0, tzinfo=timezone(timedelta(hours=2))),
            3,
            "2025-11-27T09:00:00.000Z",
            id="converted_to_utc",
        ),
    ],
)
def test_timestamp_text(now, digits, text):
    assert db.timestamp_text(now, digits=digits) == text


def test_timestamp_text_refuses_naive_datetimes():
    with pytest.raises(InvalidInputError):
        db.timestamp_text(datetime(2025, 1, 1))
