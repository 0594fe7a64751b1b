"""Backup and restore of the PostgreSQL state through the signed manifest, archive and eight steps (ADR 0015),
against a real server: each test gets a fresh schema in one database of the module.

What is restored is the backup's state (later entries gone, keyring as of the backup unless a rollback is
refused), ids the live database handed out are never handed out again, the audit chain still verifies, a
tampered archive or a backed-up bad row is refused before anything changes, a failure after staging or after
the switch leaves the live tables as they were, and another process connected (with prepared statements)
before the switch reads and writes the restored tables afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from core import service
from core.backup import service as backups
from core.backup.manifest import FileType, parse_manifest
from core.errors import ConfigError, IntegrityError, InvalidInputError, VerificationError
from core.rotation import RotationPhase, RotationRequest
from core.settings import Settings
from core.store import audit_log, keyring_store, open_registry
from core.store.postgres.db import close_all
from tests.live import run_cap
from tests.paths import REPO

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
POLICY = REPO / "examples" / "policy.lksg.v1.yml"
PEM = (
    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
    "-----END PRIVATE KEY-----"
)


@pytest.fixture(scope="module")
def base_url(pg_server):
    url = pg_server.create_database("backup")
    yield url
    close_all()
    pg_server.drop_database(url)


@pytest.fixture
def node(base_url, tmp_path):
    """A node in PostgreSQL mode on a fresh schema: keyring, one policy, three registry entries."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    _sql(base_url, f"CREATE SCHEMA {schema}")
    settings = Settings(
        data_dir=tmp_path / "node", database_url=f"{base_url}?options=-csearch_path%3D{schema}"
    )
    service.keygen(settings, now=NOW)
    service.store_policy(settings, service.load_policy(POLICY), NOW)
    for i in range(3):
        _register(settings, i)
        audit_log(settings).append("registered", {"keys": i}, NOW)
    yield settings
    close_all()
    _sql(base_url, f"DROP SCHEMA {schema} CASCADE")


def _sql(url: str, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement.encode(), params)
        return cur.fetchall() if cur.description else []


def _register(settings: Settings, i: int) -> str:
    entry = open_registry(settings).register(
        json.dumps({"proof": i}).encode(),
        b"{}",
        subject="LEI-TEST-0001",
        policy_hash="p",
        ir_hash="i",
        company_root="c",
        supplier_root="s",
        ubo_root="u",
        result="OK",
        accepted=True,
        signer=service.default_signer(settings),
        now=NOW + timedelta(seconds=i),
    )
    return entry.id


def _ids(settings: Settings) -> list[str]:
    return sorted(e.id for e in open_registry(settings).entries())


def _schemas(url: str, prefix: str) -> list[object]:
    return [
        r[0] for r in _sql(url, "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (prefix,))
    ]


def _state(settings: Settings) -> tuple[list[str], int, int]:
    return _ids(settings), audit_log(settings).tail()[1], service.load_local_keyring(settings).version


def _backup(settings: Settings) -> str:
    return backups.backup_now(settings, now=NOW).manifest.backup_id


def test_a_pg_backup_restores_the_state_as_of_the_backup_and_never_reuses_an_id(node, base_url):
    result = backups.backup_now(node, now=NOW)
    manifest = result.manifest
    assert (manifest.engine, manifest.keyring_version) == ("postgresql", 1)
    tables = {f.path for f in manifest.files if f.type is FileType.POSTGRESQL_TABLE}
    assert "postgresql/registry_entries.csv" in tables and "postgresql/audit_events.csv" in tables
    assert manifest.postgresql.sequences["registry_entry_seq"] == 3
    backed_up = _state(node)
    service.rotate_signing_key(
        node, RotationRequest(phase=RotationPhase.PREPARE, force=True), NOW + timedelta(1)
    )
    later = [_register(node, 10), _register(node, 11)]
    assert later == ["proof_004", "proof_005"]
    before = _state(node)

    with pytest.raises(VerificationError) as refused:  # the keyring was rotated since: refused by default
        backups.restore_now(node, manifest.backup_id, now=NOW)
    assert refused.value.code == "keyring_rollback"
    assert _state(node) == before and _schemas(base_url, "cap_restore_") == []

    receipt = backups.restore_now(node, manifest.backup_id, now=NOW, allow_key_rollback=True)
    assert [s.name.value for s in receipt.steps] == [
        "fetch", "verify_integrity", "prepare_staging", "check_registry", "check_policy_store",
        "check_key_metadata", "swap", "smoke",
    ]  # fmt: skip
    assert all(s.status == "ok" for s in receipt.steps)
    assert receipt.live_dir == node.database.redacted  # the receipt names the database, never a password
    checks = {c.id: c for s in receipt.steps for c in s.checks}
    assert checks["keyring_decision"].status == "warn"
    assert _state(node) == backed_up  # entries added after the backup are gone, keyring v1 again
    assert audit_log(node).verify().ok
    assert _register(node, 12) == "proof_006"  # proof_004/005 were handed out: never again
    assert keyring_store(node).floor() == 1  # an explicit rollback lowers the floor, as for files


def test_keyring_merge_keeps_the_live_keyring_and_restores_the_rest(node):
    backup_id = _backup(node)
    service.rotate_signing_key(
        node, RotationRequest(phase=RotationPhase.PREPARE, force=True), NOW + timedelta(1)
    )
    _register(node, 10)
    backups.restore_now(node, backup_id, now=NOW, keyring_merge=True)
    assert _ids(node) == ["proof_001", "proof_002", "proof_003"]
    assert (service.load_local_keyring(node).version, keyring_store(node).floor()) == (2, 2)


def test_a_tampered_archive_is_refused_before_anything_changes(node, base_url):
    backup_id = _backup(node)
    _register(node, 10)
    archive = next((node.data_dir / "backups").glob(f"{backup_id}*.tar.gz"))
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 1
    archive.write_bytes(bytes(data))
    before = _state(node)
    with pytest.raises(IntegrityError) as refused:
        backups.restore_now(node, backup_id, now=NOW)
    assert refused.value.code == "backup_digest_mismatch"
    assert _state(node) == before and _schemas(base_url, "cap_restore_") == []


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        pytest.param(
            "UPDATE registry_entries SET proof_json = '{\"proof\": 99}' WHERE id = 'proof_002'",
            "registry entries do not verify",
            id="registry_entry_changed",
        ),
        pytest.param(
            "UPDATE audit_events SET line = "
            "convert_to(replace(convert_from(line, 'UTF8'), 'keys', 'kees'), 'UTF8') WHERE seq = 1",
            "audit chain",
            id="audit_event_changed",
        ),
        pytest.param(
            "UPDATE policies SET name = name, policy_json = policy_json || ' '",
            "stored policies do not verify",
            id="policy_changed",
        ),
    ],
)
def test_a_signed_backup_of_tampered_rows_is_refused_on_the_staged_copy(node, base_url, tamper, message):
    """The checks run on the staged rows: a backup taken after someone edited the tables is refused at
    steps 4-5 and the live tables (and their later entries) stay."""
    _sql(node.database.conninfo.get_secret_value(), tamper)
    backup_id = _backup(node)
    _sql(node.database.conninfo.get_secret_value(), "UPDATE registry_meta SET value = value")
    _register(node, 10)
    before = _state(node)
    with pytest.raises(IntegrityError) as refused:
        backups.restore_now(node, backup_id, now=NOW)
    assert message in refused.value.message
    assert _ids(node) == before[0] and _schemas(base_url, "cap_restore_") == []


@pytest.mark.parametrize("event", ["after:prepare_staging", "after:check_key_metadata", "after:swap"])
def test_a_failure_at_any_step_leaves_the_live_tables_as_they_were(node, base_url, event):
    backup_id = _backup(node)
    _register(node, 10)
    before, kept = _state(node), _schemas(base_url, "cap_before_")  # earlier tests' restores keep theirs

    def crash(seen: str) -> None:
        if seen == event:
            raise IntegrityError(f"injected at {seen}")

    with pytest.raises(IntegrityError, match="injected"):
        backups.restore_now(node, backup_id, now=NOW, hook=crash)
    assert _state(node) == before
    assert _schemas(base_url, "cap_restore_") == [] and _schemas(base_url, "cap_before_") == kept
    assert _register(node, 11) == "proof_005"


_OTHER_NODE = """
import sys
from core.settings import Settings
from core.store import open_registry
registry = open_registry(Settings.from_env())
for _ in range(30):  # psycopg prepares a statement on a connection after 5 runs there: these are
    registry.entries()
    registry.get("proof_001")
with registry._db.transaction() as conn:
    assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] >= 1
print(",".join(sorted(e.id for e in registry.entries())), flush=True)
sys.stdin.readline()  # the restore happens now
print(",".join(sorted(e.id for e in registry.entries())), flush=True)
registry.get("proof_001")
from tests.pg.test_pg_backup import _register
print(_register(Settings.from_env(), 20), flush=True)
"""


def test_another_node_connected_before_the_restore_reads_and_writes_the_restored_tables(node, tmp_path):
    backup_id = _backup(node)
    _register(node, 10)
    env = {
        **os.environ,
        "CAP_DATA_DIR": str(node.data_dir),
        "CAP_DATABASE_URL": node.database.conninfo.get_secret_value(),
        "PYTHONPATH": str(REPO),
    }
    other = subprocess.Popen(
        [sys.executable, "-c", _OTHER_NODE],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout.readline().strip() == "proof_001,proof_002,proof_003,proof_004"
        backups.restore_now(node, backup_id, now=NOW)
        out, _ = other.communicate("go\n", timeout=60)
    finally:
        other.kill()
    seen, written = out.split()
    assert (seen, written) == ("proof_001,proof_002,proof_003", "proof_005")
    assert _ids(node) == [
        "proof_001",
        "proof_002",
        "proof_003",
        "proof_005",
    ]  # its write is in the live table


@pytest.mark.parametrize(
    "planted",
    [
        pytest.param(lambda s: {"note": PEM}, id="pem_in_audit_detail"),
        pytest.param(
            lambda s: {"note": (s.layout.keys_dir / f"{service.default_signer(s).kid}.pem").read_text()},
            id="own_signing_key_pem",
        ),
    ],
)
def test_a_private_key_in_a_table_refuses_the_backup(node, planted):
    audit_log(node).append("note", planted(node), NOW)
    with pytest.raises(InvalidInputError) as refused:
        backups.backup_now(node, now=NOW)
    assert refused.value.code == "backup_private_key_material"
    assert refused.value.details["file"] == "postgresql/audit_events.csv"
    assert backups.list_backups(node) == []  # nothing stored


def test_a_pg_backup_is_refused_on_a_sqlite_node_naming_both_engines(node, tmp_path):
    backup_id = _backup(node)
    sqlite_node = Settings(data_dir=tmp_path / "sqlite-node")
    service.keygen(sqlite_node, now=NOW)
    with pytest.raises(ConfigError) as refused:
        backups.restore_now(
            sqlite_node, backup_id, now=NOW, from_uri=(node.data_dir / "backups").resolve().as_uri()
        )
    assert refused.value.code == "restore_engine_mismatch"
    assert "PostgreSQL" in refused.value.message and "SQLite" in refused.value.message
    assert not (tmp_path / "sqlite-node" / "registry.sqlite").exists()


def test_cap_backup_in_pg_mode_writes_a_postgresql_backup(node):
    env = {
        **os.environ,
        "CAP_DATA_DIR": str(node.data_dir),
        "CAP_DATABASE_URL": node.database.conninfo.get_secret_value(),
    }
    done = run_cap("backup", "--json", env=env)
    assert done.returncode == 0, done.stderr
    backup_id = json.loads(done.stdout)["backup_id"]
    manifest = parse_manifest((node.data_dir / "backups" / f"{backup_id}.manifest.json").read_bytes())
    assert manifest.engine == "postgresql"
    receipt = backups.restore_now(node, backup_id, now=NOW, verify_only=True)
    assert [s.status for s in receipt.steps][-2:] == ["skipped", "skipped"]


def test_disaster_recovery_into_an_empty_database_continues_the_ids(node, base_url, tmp_path):
    """A fresh database (no keyring yet): the signature is checked against the keys this node holds, the
    tables come back and the registry sequence continues after the backup's ids."""
    backup_id = _backup(node)
    backed_up = _state(node)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    _sql(base_url, f"CREATE SCHEMA {schema}")
    fresh = Settings(data_dir=node.data_dir, database_url=f"{base_url}?options=-csearch_path%3D{schema}")
    try:
        backups.restore_now(
            fresh, backup_id, now=NOW, from_uri=(node.data_dir / "backups").resolve().as_uri()
        )
        assert _state(fresh) == backed_up and audit_log(fresh).verify().ok
        assert _register(fresh, 10) == "proof_004"
    finally:
        close_all()
        _sql(base_url, f"DROP SCHEMA {schema} CASCADE")


def test_personal_data_in_a_table_is_named_by_table_and_column(node):
    """The tables are scanned like SQLite snapshots: sampled rows, findings named ``table.column``."""
    audit_log(node).append("note", {"contact": "jane.doe@example.com"}, NOW)
    with pytest.raises(InvalidInputError) as refused:
        backups.backup_now(node, now=NOW)
    assert (refused.value.code, refused.value.details["field"]) == (
        "backup_pii_detected",
        "audit_events.line",
    )
    assert backups.backup_now(node, now=NOW, pii="warn").scan.pii


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.xdist_group("prefect")
def test_backup_and_restore_flows_run_in_pg_mode(prefect_api, node, monkeypatch):
    """The ``backup`` flow (``backup-daily``) and the ``restore`` flow as real flow runs on PostgreSQL."""
    from flows.backup import backup
    from flows.restore import restore

    monkeypatch.setenv("CAP_DATA_DIR", str(node.data_dir))
    monkeypatch.setenv("CAP_DATABASE_URL", node.database.conninfo.get_secret_value())
    made = backup(keep_last=5)
    _register(node, 10)
    receipt = restore(backup_id=made["backup_id"])
    assert [s["status"] for s in receipt["steps"]] == ["ok"] * 8
    assert receipt["live_dir"] == node.database.redacted and receipt["signature"]["kid"]
    assert _ids(node) == ["proof_001", "proof_002", "proof_003"]


class _Killed(BaseException):
    """Stands in for the process dying: no compensation runs."""


def test_a_restore_killed_after_staging_leaves_live_as_it_was_and_the_next_one_tidies_up(node, base_url):
    from core.backup.pg_restore import run_pg_restore
    from core.backup.restore import RestoreOptions

    backup_id = _backup(node)
    _register(node, 10)
    before = _state(node)

    def die(event: str) -> None:
        if event == "after:check_registry":
            raise _Killed(event)

    options = RestoreOptions(hook=die, compensate=False)
    store = backups.open_backup_store(node, None)
    with pytest.raises(_Killed):
        run_pg_restore(node, store, backup_id, service.default_signer(node), now=NOW, options=options)
    assert _state(node) == before and len(_schemas(base_url, "cap_restore_")) == 1  # left behind
    receipt = backups.restore_now(node, backup_id, now=NOW + timedelta(1))
    assert receipt.recovered_first == "rolled_back" and _schemas(base_url, "cap_restore_") == []
    assert _ids(node) == ["proof_001", "proof_002", "proof_003"]


def test_a_replica_follows_an_allowed_keyring_rollback_and_nothing_else(node):
    """An API replica's watcher holds v2; a restore with --allow-key-rollback lowers the floor to v1 and the
    replica follows (there is no generation file in the database: the lowered floor is the signal)."""
    from core.keyring import KeyringWatcher
    from core.store.keyring import guard_for
    from core.store.postgres.keyring import PgKeyringStore

    backup_id = _backup(node)
    service.rotate_signing_key(
        node, RotationRequest(phase=RotationPhase.PREPARE, force=True), NOW + timedelta(1)
    )
    store = PgKeyringStore(node.database, poll_seconds=0)
    watcher = KeyringWatcher(node.layout.keyring, guard=guard_for(store), source=store)
    assert watcher.current(NOW).version == 2
    backups.restore_now(node, backup_id, now=NOW, allow_key_rollback=True)
    assert (watcher.current(NOW).version, watcher.last_error) == (1, None)
