"""The PostgreSQL engine against a real server: ids and the audit chain stay consistent under writers in
separate processes (as on separate nodes), schemas are versioned and refused when foreign or too new,
tampering with a stored audit event is found, and driver errors map to StorageError without the password."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import psycopg
import pytest

from core.audit import GENESIS
from core.errors import IntegrityError, StorageError
from core.registry import verify_entry
from core.settings import Settings
from core.store import audit_log, open_policy_store, open_registry, parse_database_url
from core.store.postgres.db import close_all, translate
from tests.paths import REPO

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PER_WORKER = 60

_WRITER = """
import json, sys
from datetime import UTC, datetime
from core.settings import Settings
from core.signing import Ed25519Signer
from core.store import audit_log, open_registry
settings = Settings.from_env()
signer = Ed25519Signer.from_seed(bytes([int(sys.argv[1])]) * 32)
registry, log = open_registry(settings), audit_log(settings)
for i in range(int(sys.argv[2])):
    registry.register(
        json.dumps({"worker": sys.argv[1], "i": i}).encode(), b"{}", subject="acme", policy_hash="p",
        ir_hash="i", company_root="c", supplier_root="s", ubo_root="u", result="OK", accepted=True,
        signer=signer, now=datetime.now(UTC),
    )
    log.append("worker", {"worker": sys.argv[1], "i": i}, datetime.now(UTC))
"""


def _two_writers(code: str, url: str, count: int) -> None:
    env = {**os.environ, "CAP_DATABASE_URL": url, "PYTHONPATH": str(REPO)}
    workers = [
        subprocess.Popen([sys.executable, "-c", code, str(w), str(count)], cwd=REPO, env=env) for w in (1, 2)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]


@pytest.fixture
def pg_settings(pg_url, tmp_path):
    yield Settings(data_dir=tmp_path / "data", database_url=pg_url)
    close_all()


def test_two_processes_write_without_repeating_or_losing_an_id_and_keep_one_chain(pg_settings, pg_url):
    """Two writer processes (as two nodes would) register proofs and append audit events at once."""
    audit_log(pg_settings).append("start", {}, T0)
    _two_writers(_WRITER, pg_url, PER_WORKER)
    entries = open_registry(pg_settings).entries()
    ids = [e.id for e in entries]
    assert sorted(ids) == sorted(
        f"proof_{n:03d}" for n in range(1, 2 * PER_WORKER + 1)
    )  # none repeated or lost
    assert all(verify_entry(e) for e in entries)
    assert {e.proof_json for e in entries} == {
        f'{{"worker": "{w}", "i": {i}}}' for w in (1, 2) for i in range(PER_WORKER)
    }
    report = audit_log(pg_settings).verify()
    assert (report.ok, report.total, report.error) == (True, 1 + 2 * PER_WORKER, None)
    seen = [(e.details.get("worker"), e.details.get("i")) for e in audit_log(pg_settings).events()][1:]
    assert sorted(seen) == sorted((str(w), i) for w in (1, 2) for i in range(PER_WORKER))


def _sql(url: str, statement: str, params: tuple[object, ...] = ()) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement, params)


def test_an_edited_audit_row_is_found_and_a_garbled_last_row_stops_appends(pg_settings, pg_url):
    log = audit_log(pg_settings)
    for i in range(4):
        log.append("step", {"i": i}, T0)
    forged = next(e for e in log.events() if e.seq == 2).line().replace(b'"i":1', b'"i":9')
    _sql(pg_url, "UPDATE audit_events SET line = %s WHERE seq = 2", (forged,))
    report = log.verify()
    assert (report.ok, report.tamper_index, "digest mismatch" in (report.error or "")) == (False, 1, True)
    _sql(pg_url, "UPDATE audit_events SET line = %s WHERE seq = 4", (b'{"seq":4,"ts":"20',))
    with pytest.raises(IntegrityError) as info:
        log.append("more", {}, T0)
    assert info.value.details["line"] == 4
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM audit_events").fetchone() == (4,)


def test_schema_versions_are_recorded_per_component(pg_settings, pg_url):
    open_registry(pg_settings)
    open_policy_store(pg_settings)
    assert audit_log(pg_settings).tail() == (GENESIS, 0)
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT component, version FROM schema_migrations ORDER BY component").fetchall()
    assert rows == [("audit", 1), ("policy_store", 1), ("registry", 1)]


@pytest.mark.parametrize(
    ("row", "code"),
    [
        pytest.param(("registry", 2), "storage_schema_too_new", id="too_new"),
        pytest.param(("prefect", 1), "storage_wrong_schema", id="foreign"),
    ],
)
def test_a_newer_or_foreign_schema_is_refused(pg_settings, pg_url, row, code):
    _sql(
        pg_url,
        "CREATE TABLE schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL, "
        "applied_at TEXT NOT NULL, PRIMARY KEY (component, version))",
    )
    _sql(pg_url, "INSERT INTO schema_migrations VALUES (%s, %s, 'then')", row)
    with pytest.raises(StorageError) as info:
        open_registry(pg_settings)
    assert (info.value.code, info.value.transient) == (code, False)


def test_another_applications_schema_migrations_table_is_refused(pg_settings, pg_url):
    _sql(pg_url, "CREATE TABLE schema_migrations (version VARCHAR PRIMARY KEY)")  # Rails' shape
    with pytest.raises(StorageError) as info:
        open_registry(pg_settings)
    assert (info.value.code, info.value.transient) == ("storage_wrong_schema", False)


def test_an_unreachable_server_is_transient_and_the_password_is_never_shown(tmp_path):
    from core import service
    from tests.live import free_port

    settings = Settings(
        data_dir=tmp_path / "node", database_url=f"postgresql://cap:s3cr3t-pw@127.0.0.1:{free_port()}/x"
    )
    with pytest.raises(StorageError) as info:
        open_registry(settings)
    error = info.value
    assert (error.code, error.transient) == ("storage_unavailable", True)
    assert "s3cr3t-pw" not in error.message + repr(error.details)
    assert "postgresql://cap:***@127.0.0.1" in error.message
    with pytest.raises(StorageError):
        service.keygen(settings, now=T0)  # the keyring's store is asked before a key is generated
    assert not settings.layout.keys_dir.exists()


@pytest.mark.parametrize(
    ("exc", "transient", "code"),
    [
        pytest.param(psycopg.errors.SerializationFailure("x"), True, "storage_busy", id="serialization"),
        pytest.param(psycopg.errors.DeadlockDetected("x"), True, "storage_busy", id="deadlock"),
        pytest.param(psycopg.errors.AdminShutdown("x"), True, "storage_busy", id="admin_shutdown"),
        pytest.param(psycopg.errors.UniqueViolation("x"), False, "storage_error", id="unique"),
        pytest.param(psycopg.errors.UndefinedTable("x"), False, "storage_error", id="undefined_table"),
        pytest.param(
            psycopg.OperationalError("password s3cr3t-pw rejected"), True, "storage_unavailable", id="conn"
        ),
    ],
)
def test_driver_errors_map_once(exc, transient, code):
    url = parse_database_url("postgresql://cap:s3cr3t-pw@db.example:5432/cap")
    error = translate(exc, url)
    assert (error.transient, error.code) == (transient, code)
    assert "s3cr3t-pw" not in error.message
