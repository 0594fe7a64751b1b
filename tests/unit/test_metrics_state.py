"""Metrics that mean the same in every process: counters present at 0, state gauges computed at scrape time
from the data dir, multiprocess files that outlive a flow run but not its server, one directory per server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from core import service
from core.drift import analyse_drift, snapshot_of_entry
from core.metrics import REGISTRY, ObservedState, scrape_registry
from core.modes import EnforcementMode
from core.registry import Registry
from core.settings import Settings
from core.status import BACKUP, LISTS_REFRESH, observe_status, open_book, record_entry_drift
from deployments.serve import MetricsDir
from tests.paths import REPO
from tests.world import NOW, POLICY, World

OTHER_POLICY = POLICY.replace("supplier_count_max: 10", "supplier_count_max: 20")


def samples(text: bytes | str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body = text.decode() if isinstance(text, bytes) else text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(body)
        for s in f.samples
    }


@pytest.fixture
def settings(tmp_path) -> Settings:
    s = Settings(data_dir=tmp_path / "var")
    s.data_dir.mkdir()
    return s


# --- counters: every label value a rule or panel relies on exists at 0 ----------------------------------


@pytest.mark.parametrize(
    ("name", "label", "value"),
    [
        ("cap_backup_total", "result", "failure"),
        ("cap_restore_total", "result", "failure"),
        ("cap_enforce_total", "result", "failure"),
        ("cap_lists_refresh_total", "result", "failure"),
        ("cap_enforce_mode_changes_total", "mode", "strict"),
        ("cap_drift_by_type_total", "drift_type", "signature"),
    ],
)
def test_counters_exist_before_their_first_event(name, label, value):
    """A fresh process exports them at 0: the first failure is an increase `increase()` can see."""
    code = textwrap.dedent(
        """
        import core.enforce, core.drift  # the modules that own those label values
        from prometheus_client import generate_latest
        from core.metrics import REGISTRY
        print(generate_latest(REGISTRY).decode())
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert samples(out.stdout)[(name, ((label, value),))] == 0


# --- state gauges --------------------------------------------------------------------------------------


def test_no_state_sample_without_state(settings):
    """A fresh install: no backup, no list refresh, no drift analysed — those gauges have no sample (so
    ListsRefreshTooOld cannot fire on a default install where list refresh is off)."""
    text = generate_latest(scrape_registry(observe_status(settings.layout, None, NOW)))
    names = {name for name, _ in samples(text)}
    assert not names & {
        "cap_lists_refresh_last_success_timestamp_seconds",
        "cap_lists_keys",
        "cap_backup_last_success_timestamp_seconds",
        "cap_drift_severity_score",
        "cap_key_rotation_phase",
    }
    assert b"# TYPE cap_lists_refresh_last_success_timestamp_seconds gauge" in text  # still described


def test_state_gauges_come_from_the_status_book(settings):
    with open_book(settings.layout.status_db) as book:
        book.record_success(BACKUP, NOW, 1234, "backup-x")
        book.record_success(LISTS_REFRESH, NOW + timedelta(hours=1), 99, "0xroot")
    got = samples(generate_latest(scrape_registry(observe_status(settings.layout, None, NOW))))
    assert got[("cap_backup_last_success_timestamp_seconds", ())] == NOW.timestamp()
    assert got[("cap_backup_size_bytes", ())] == 1234
    assert got[("cap_lists_refresh_last_success_timestamp_seconds", ())] == NOW.timestamp() + 3600
    assert got[("cap_lists_keys", ())] == 99


def _register(settings, world, hours):
    built = world.build(EnforcementMode.STRICT)
    return service.register_proof(
        settings, built.proof, built.verdict, world.signer, NOW + timedelta(hours=hours)
    )


def _drift(base, current):
    return analyse_drift(snapshot_of_entry(base), snapshot_of_entry(current), keyring=None)


def test_drift_gauge_is_the_highest_among_current_entries(settings):
    """Not the last analysis, nor the highest ever: the newest entry of each subject, as booked."""
    base = _register(settings, World(), 0)
    drifted = _register(settings, World(policy_text=OTHER_POLICY), 1)
    score = _drift(base, drifted).score
    assert score >= 40
    record_entry_drift(settings.layout, [drifted, base], [_drift(base, drifted), None], NOW)
    with open_book(settings.layout.status_db) as book:
        book.record_drift([(base.id, base.proof_hash, 99)], NOW)  # no longer current: must not count
    assert observe_status(settings.layout, None, NOW).drift_severity_max == score

    calm = _register(settings, World(), 3)  # a newer entry of the subject, not analysed yet
    assert observe_status(settings.layout, None, NOW).drift_severity_max is None
    record_entry_drift(settings.layout, [calm], [_drift(drifted, calm)], NOW)
    assert observe_status(settings.layout, None, NOW).drift_severity_max == _drift(drifted, calm).score


def test_a_reused_entry_id_does_not_inherit_an_old_score(settings):
    base = _register(settings, World(), 0)
    drifted = _register(settings, World(policy_text=OTHER_POLICY), 1)
    record_entry_drift(settings.layout, [drifted], [_drift(base, drifted)], NOW)
    settings.layout.registry_db.unlink()  # e.g. restored from an older backup: ids start again
    Registry(settings.layout.registry_db).close()
    _register(settings, World(), 0)
    again = _register(settings, World(suppliers_csv=World.suppliers_csv + "X,DE,1\n"), 1)
    assert again.id == drifted.id and again.proof_hash != drifted.proof_hash
    assert observe_status(settings.layout, None, NOW).drift_severity_max is None


# --- multiprocess: files outlive a flow run, the state never comes from one ----------------------------


def test_finished_processes_leave_their_counts_in_one_archive_and_no_gauge(tmp_path, monkeypatch):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    code = textwrap.dedent(
        """
        from core.metrics import BACKUP_TOTAL
        BACKUP_TOTAL.labels(result="failure").inc()
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    for _ in range(3):  # three finished "flow runs"
        subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    observed = ObservedState(rotation_phase=1, dual_accept_remaining_seconds=60.0)
    got = samples(generate_latest(scrape_registry(observed)))
    assert got[("cap_backup_total", (("result", "failure"),))] == 3
    assert got[("cap_backup_total", (("result", "success"),))] == 0
    phase = [k for k in got if k[0] == "cap_key_rotation_phase"]
    assert phase == [("cap_key_rotation_phase", ())] and got[phase[0]] == 1  # one series, no pid label
    assert not list(metrics_dir.glob("gauge_*"))
    # each exited process folded its values into the archive and removed its own files
    assert sorted(p.name for p in metrics_dir.glob("*.db")) == ["counter_archive.db", "histogram_archive.db"]


def test_the_process_registry_is_served_without_a_multiprocess_dir(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    text = generate_latest(scrape_registry(ObservedState(drift_severity_max=70)))
    assert samples(text)[("cap_drift_severity_score", ())] == 70
    assert REGISTRY.get_sample_value("cap_drift_severity_score") is None


# --- one metrics directory per server --------------------------------------------------------------------


HOLD = textwrap.dedent(
    """
    import sys, time
    from core.settings import Settings
    from deployments.serve import MetricsDir
    d = MetricsDir(Settings(data_dir=sys.argv[1]))
    print(d.open(), flush=True)
    time.sleep(60)
    """
)


def test_a_second_server_keeps_the_first_ones_files_and_removes_a_dead_ones(settings):
    first = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(settings.data_dir)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        first_dir = __import__("pathlib").Path(first.stdout.readline().strip())
        (first_dir / "counter_123.db").write_bytes(b"x")
        second = MetricsDir(settings)
        assert second.open() != first_dir
        assert (first_dir / "counter_123.db").exists()  # a live server's files are never wiped
        second.close()
        assert not second.path.exists()  # removed when its server stops
        first.send_signal(signal.SIGKILL)  # dies without cleaning up
        first.wait()
        third = MetricsDir(settings)
        third.open()
        assert not first_dir.exists()  # the dead server's directory goes with the next start
        third.close()
    finally:
        first.kill()
        first.wait()
