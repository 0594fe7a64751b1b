"""PostgreSQL mode refuses what only exists for SQLite files (Litestream replication, point-in-time restore
and the drill from a replica) with a clear error, instead of acting on one node's local files. Backup and
restore of the PostgreSQL state work: tests/pg/test_pg_backup.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.backup import service as backups
from core.backup.drill import run_drill
from core.errors import ConfigError
from core.settings import Settings
from core.store import NOT_ON_POSTGRESQL
from deployments.serve import replicators

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
            lambda s: backups.restore_from_replica(s, "s3://b/p", now=NOW),
            "WAL archiving",
            id="restore_replica",
        ),
        pytest.param(lambda s: run_drill(s, "s3://b/p", now=NOW), "Litestream replica", id="restore_drill"),
        pytest.param(
            lambda s: backups.prepare_restore(s, "20260101T000000Z-x"), "restore_now", id="restore_steps"
        ),
        pytest.param(
            lambda s: replicators(s, {"CAP_REPLICA_URL": "s3://b/p"}), "Litestream", id="litestream"
        ),
    ],
)
def test_pg_mode_refuses_what_is_not_on_postgresql(pg_mode, call, needle):
    _refused(call, pg_mode, needle)
