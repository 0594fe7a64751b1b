"""PostgreSQL mode refuses what is not on PostgreSQL yet (backup/restore of the state, Litestream replication)
with a clear error, instead of acting on one node's local files."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from core.backup import service as backups
from core.errors import ConfigError
from core.settings import Settings
from core.store import NOT_ON_POSTGRESQL
from deployments.serve import replicators
from tests.live import run_cap

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
URL = "postgresql://cap:hunter2@127.0.0.1:1/cap"  # never connected to: every refusal comes first


@pytest.fixture
def pg_mode(tmp_path):
    return Settings(data_dir=tmp_path / "data", database_url=URL)


def _refused(call, settings, needle):
    with pytest.raises(ConfigError) as info:
        call(settings)
    error = info.value
    assert (error.code, error.details["field"]) == (NOT_ON_POSTGRESQL, "CAP_DATABASE_URL")
    assert needle in error.message
    assert "hunter2" not in error.message + repr(error.details)


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        pytest.param(
            lambda s: backups.backup_now(s, now=NOW),
            "backup of the PostgreSQL state is not supported yet; use pg_dump",
            id="backup",
        ),
        pytest.param(
            lambda s: backups.restore_now(s, "20260101T000000Z-x", now=NOW), "pg_restore", id="restore"
        ),
        pytest.param(
            lambda s: backups.restore_from_replica(s, "s3://b/p", now=NOW), "pg_restore", id="restore_replica"
        ),
        pytest.param(
            lambda s: replicators(s, {"CAP_REPLICA_URL": "s3://b/p"}), "Litestream", id="litestream"
        ),
    ],
)
def test_pg_mode_refuses_what_is_not_on_postgresql(pg_mode, call, needle):
    _refused(call, pg_mode, needle)


def test_cap_backup_in_pg_mode_exits_with_the_refusal(tmp_path):
    env = {**os.environ, "CAP_DATA_DIR": str(tmp_path / "data"), "CAP_DATABASE_URL": URL}
    done = run_cap("backup", env=env)
    assert done.returncode == 2, done.stderr
    assert "backup of the PostgreSQL state is not supported yet; use pg_dump" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout
    assert not (tmp_path / "data" / "backups").exists()
