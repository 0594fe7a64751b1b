"""The ``restore-drill`` flow on the shared Prefect test server: a real Litestream file replica of a real data
dir, the latest point restored into a scratch dir, sampled verdicts equal to live, the receipt artifact; a
tampered registry entry in the replica makes the drill fail; no replica URL means a skipped run."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from core.backup.drill import run_drill
from core.errors import InvalidInputError, VerificationError
from core.registry import Registry
from deployments.serve import replicators
from tests.flows.test_backup_flows import _artifact, _assert_no_key_material
from tests.integration.test_replica_pitr import await_in_replica
from tests.registry_fill import register_filler
from tests.unit.test_backup_helpers import NOW, tree_digest
from tests.unit.test_backup_service import real_state


def _register(settings, n: int) -> str:
    with Registry(settings.layout.registry_db) as registry:
        return register_filler(registry, settings, n, subject=f"LEI-{n}", now=NOW)


def _replicate(settings, url: str, writes) -> None:
    env = {**os.environ, "CAP_REPLICA_SYNC_INTERVAL": "100ms"}
    (child,) = replicators(settings, {**env, "CAP_REPLICA_URL": url})
    child.start(env)
    try:
        time.sleep(1.5)
        last = writes()
        await_in_replica(env, Path(child.argv[3]), last)
    finally:
        child.proc.send_signal(signal.SIGKILL)
        child.proc.wait()


def _without_registry(digest: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in digest.items() if not k.startswith("registry.sqlite")}


def _ids(settings) -> list[str]:
    conn = sqlite3.connect(f"file:{settings.layout.registry_db}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute("SELECT id FROM registry_entries ORDER BY id")]
    finally:
        conn.close()


@pytest.fixture
def replicated(tmp_path, monkeypatch):
    monkeypatch.setenv("CAP_DATA_DIR", str(tmp_path / "var"))
    settings = real_state(tmp_path / "var")
    url = (tmp_path / "replica").as_uri()
    ids = [_register(settings, 0)]

    def writes() -> str:
        ids.extend(_register(settings, n) for n in range(1, 4))
        return ids[-1]

    _replicate(settings, url, writes)
    return settings, url, ids


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.xdist_group("prefect")
def test_restore_drill_flow_runs(prefect_api, replicated, monkeypatch):
    from flows.restore_drill import restore_drill

    settings, url, ids = replicated
    before = _without_registry(tree_digest(settings.data_dir))
    monkeypatch.setenv("CAP_REPLICA_URL", url)
    report = restore_drill(sample=10)
    assert report["restored_entries"] == len(ids)
    assert sorted(s["entry_id"] for s in report["sampled"]) == sorted(ids)
    assert all(s["restored_ok"] and s["live_ok"] for s in report["sampled"])
    receipt = report["receipt"]
    assert [s["status"] for s in receipt["steps"]] == ["ok"] * 8 and receipt["signature"]["kid"]
    assert receipt["replica"]["url"] == url and receipt["replica"]["reached"]
    assert _without_registry(tree_digest(settings.data_dir)) == before  # live only read
    assert _ids(settings) == ids  # (opening the live registry may checkpoint its WAL: same rows)
    assert not list((settings.data_dir / "run").glob("drill-*"))  # scratch removed
    artifact = _artifact("restore-drill")
    assert url in artifact.data and "| 8 | smoke | ok |" in artifact.data
    _assert_no_key_material(artifact.data, settings)

    monkeypatch.delenv("CAP_REPLICA_URL")
    assert "skipped" in restore_drill()


def test_drill_fails_when_a_restored_entry_verifies_differently(replicated):
    settings, url, ids = replicated
    assert run_drill(settings, url, now=NOW).restored_entries == len(ids)
    conn = sqlite3.connect(settings.layout.registry_db)  # live now differs from what was replicated
    conn.execute("UPDATE registry_entries SET proof_json = '{\"n\":99}' WHERE id = ?", (ids[1],))
    conn.commit()
    conn.close()
    with pytest.raises(VerificationError) as caught:
        run_drill(settings, url, now=NOW)
    assert caught.value.code == "drill_verdict_mismatch" and caught.value.details["entries"] == [ids[1]]


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.xdist_group("prefect")
def test_restore_deployment_takes_a_replica_and_a_point(prefect_api, replicated):
    from flows.restore import restore

    settings, url, ids = replicated
    _register(settings, 50)  # after the replicator stopped: undone by a restore to latest
    receipt = restore(from_replica=url)
    assert [s["status"] for s in receipt["steps"]] == ["ok"] * 8 and receipt["signature"]["kid"]
    assert receipt["replica"]["url"] == url and receipt["replica"]["requested"] is None
    assert _ids(settings) == ids
    artifact = _artifact("restore-receipt")
    assert "| 8 | smoke | ok |" in artifact.data
    _assert_no_key_material(artifact.data, settings)
    with pytest.raises(InvalidInputError):
        restore(backup_id="b1", from_replica=url)
    with pytest.raises(InvalidInputError):
        restore(at="2026-12-05T10:42:00Z")
