"""The ``backup`` and ``restore`` flows: one real run of each on the shared Prefect test server (result,
artifact, metrics, no key material); the restore saga's task wiring and compensations through ``.fn()``;
the retry condition; the ``backup-daily`` and ``restore`` deployment entries."""

from __future__ import annotations

import inspect
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from core import service
from core.backup import service as backups
from core.backup.restore import RestoreSaga, journal_path, run_restore
from core.errors import VerificationError
from core.keyring import load_keyring, save_keyring
from core.metrics import REGISTRY
from tests.unit.test_backup_helpers import NOW, tree_digest
from tests.unit.test_backup_service import real_state

REPO = Path(__file__).resolve().parents[2]


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert found, f"no artifact {key}"
    return max(found, key=lambda a: a.created)  # the newest: the shared server keeps earlier tests' ones


def _assert_no_key_material(text: str, settings) -> None:
    pem = settings.layout.private_key_path(service.default_signer(settings).kid).read_text()
    assert "PRIVATE KEY" not in text and pem.strip().splitlines()[1] not in text


class _Killed(BaseException):
    """Stands in for the process dying: no compensation runs."""


def _die_mid_swap(settings, bid: str) -> None:
    def hook(event: str) -> None:
        if event == "swap:exchanged":
            raise _Killed(event)

    job = backups.prepare_restore(settings, bid)
    opts = replace(job.options, hook=hook, compensate=False)
    with pytest.raises(_Killed):
        run_restore(job.store, bid, job.live_dir, service.default_signer(settings), now=NOW, options=opts)
    assert journal_path(job.live_dir).exists()


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.xdist_group("prefect")
def test_backup_then_restore_flow_runs(prefect_api, tmp_path, monkeypatch):
    from flows.backup import backup
    from flows.restore import restore

    monkeypatch.setenv("CAP_DATA_DIR", str(tmp_path / "var"))
    settings = real_state(tmp_path / "var")
    ok = _sample("cap_backup_total", result="success")

    made = backup(keep_last=5)
    bid = made["backup_id"]
    assert made["store"] == settings.layout.backups_dir.resolve().as_uri() and made["deleted"] == []
    assert _sample("cap_backup_total", result="success") == ok + 1
    report = _artifact("backup-report")
    manifest = backups.open_backup_store(settings, None).get_manifest(bid).decode()
    assert bid in report.data and "policies.sqlite" in report.data and "keyring.json" in report.data
    assert all(line.split('"sha3_256":"')[1][:66] in report.data for line in manifest.split("},{")[:3])
    _assert_no_key_material(report.data, settings)

    (settings.data_dir / "config.yaml").write_text("subject: changed-after-backup\n")
    restored = tree_digest(settings.data_dir)
    _die_mid_swap(settings, bid)  # an earlier restore "killed" after journaling its swap
    restores = _sample("cap_restore_total", result="success")
    receipt = restore(backup_id=bid)
    assert receipt["recovered_first"] == "rolled_back"
    assert [s["status"] for s in receipt["steps"]] == ["ok"] * 8 and receipt["signature"]["kid"]
    assert (settings.data_dir / "config.yaml").read_text() == "subject: LEI-TEST-0001\n"
    assert tree_digest(settings.data_dir) != restored
    assert _sample("cap_restore_total", result="success") == restores + 1
    artifact = _artifact("restore-receipt")
    assert bid in artifact.data and "| 8 | smoke | ok |" in artifact.data
    _assert_no_key_material(artifact.data, settings)


# --- the restore flow's saga wiring, without a Prefect server ------------------------------------------


def _plain_tasks(calls: list[str]):
    """``tasks.restore`` with every task replaced by its ``.fn`` (recording the calls)."""
    from tasks import restore as real

    def recorded(name):
        fn = getattr(real, name).fn

        def call(*args, **kwargs):
            calls.append(name)
            return fn(*args, **kwargs)

        return call

    names = [n for n, v in vars(real).items() if hasattr(v, "fn")]
    return SimpleNamespace(**{n: recorded(n) for n in names})


def _run_flow_steps(monkeypatch, settings, bid, calls, **options):
    import flows.restore as flow_module

    monkeypatch.setattr(flow_module, "t", _plain_tasks(calls))
    job = backups.prepare_restore(settings, bid, **options)
    saga = RestoreSaga(job.new_context())
    flow_module._run_steps(saga, job)
    return saga


def test_flow_steps_verify_only_run_six_checks_and_touch_nothing(tmp_path, monkeypatch):
    settings = real_state(tmp_path / "var")
    bid = backups.backup_now(settings, now=NOW).manifest.backup_id
    before = tree_digest(settings.data_dir)
    calls: list[str] = []
    saga = _run_flow_steps(monkeypatch, settings, bid, calls, verify_only=True)
    assert calls == [
        "fetch",
        "verify_integrity",
        "prepare_staging",
        "check_registry",
        "check_policy_store",
        "check_key_metadata",
        "discard_staging",
        "discard_fetch",
    ]
    assert [r.status for r in saga.records] == ["ok"] * 6 + ["skipped"] * 2
    assert tree_digest(settings.data_dir) == before
    assert not list(tmp_path.glob("var.staging-*")) and not list(tmp_path.glob(".var.restore-*"))


def test_flow_steps_compensate_in_reverse_on_a_keyring_rollback(tmp_path, monkeypatch):
    settings = real_state(tmp_path / "var")
    bid = backups.backup_now(settings, now=NOW).manifest.backup_id
    ring = settings.layout.keyring
    ring.write_text(json.dumps({**json.loads(ring.read_text()), "version": 9}))
    before = tree_digest(settings.data_dir)
    calls: list[str] = []
    with pytest.raises(VerificationError) as info:
        _run_flow_steps(monkeypatch, settings, bid, calls)
    assert info.value.code == "keyring_rollback"
    assert calls[-3:] == ["discard_staging", "discard_extract", "discard_fetch"]
    assert info.value.details["restore_checks"]
    assert tree_digest(settings.data_dir) == before
    assert not list(tmp_path.glob("var.staging-*")) and not list(tmp_path.glob(".var.restore-*"))


def test_flow_steps_smoke_failure_swaps_back(tmp_path, monkeypatch):
    settings = real_state(tmp_path / "var")
    bid = backups.backup_now(settings, now=NOW).manifest.backup_id
    target = tmp_path / "fresh"
    calls: list[str] = []
    with pytest.raises(VerificationError) as info:
        _run_flow_steps(monkeypatch, settings, bid, calls, target=target)
    assert info.value.code == "restore_smoke_failed" and not target.exists()
    assert calls[-4:] == ["swap_back", "discard_staging", "discard_extract", "discard_fetch"]


# --- retries, deployments, the shared mutation limit ---------------------------------------------------


def test_storage_tasks_retry_and_local_steps_do_not():
    from tasks import backup as b
    from tasks import restore as r
    from tasks.retry import retry_transient

    for task in (b.back_up, b.apply_retention, r.fetch):
        assert task.retries == 3 and task.retry_condition_fn is retry_transient
    for task in (r.verify_integrity, r.prepare_staging, r.swap_in, r.smoke_check, r.swap_back):
        assert task.retries == 0


def test_restore_backup_and_rotation_share_one_mutation_slot():
    import flows.backup
    import flows.restore
    import flows.rotation
    from tasks import locks

    assert locks.MUTATION_LIMIT == "cap-mutation"
    for module in (flows.backup, flows.restore, flows.rotation):
        assert module.mutation_slot is locks.mutation_slot


def _entry(name: str) -> dict:
    doc = yaml.safe_load((REPO / "prefect.yaml").read_text())
    return next(d for d in doc["deployments"] if d["name"] == name)


def test_deployment_entries_match_the_flows():
    from flows.backup import backup
    from flows.restore import restore

    daily, manual = _entry("backup-daily"), _entry("restore")
    assert daily["entrypoint"] == "flows/backup.py:backup" and daily["schedules"][0]["cron"]
    assert daily["parameters"]["to_uri"] is None and daily["parameters"]["encrypt"] is False
    assert "schedules" not in manual and manual["entrypoint"] == "flows/restore.py:restore"
    for entry, fn in ((daily, backup), (manual, restore)):
        assert entry["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
        assert set(entry["parameters"]) <= set(inspect.signature(fn.fn).parameters)
    names = (p.replace("keyring", "") for p in inspect.signature(restore.fn).parameters)  # choices, not keys
    assert not any("key" in p and "rollback" not in p for p in names)


def _run_artifact(run_id, key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        runs = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        found = [a for a in client.read_artifacts(artifact_filter=runs) if a.key == key]
        name = client.read_flow_run(run_id).name
    assert found, f"no artifact {key} in run {name}"
    return name + "\n" + found[0].data


@pytest.mark.timeout(300)
@pytest.mark.xdist_group("prefect")
def test_a_failed_restore_publishes_what_failed_and_a_rollback_is_a_warning(
    prefect_api, tmp_path, monkeypatch
):
    from flows.restore import restore

    monkeypatch.setenv("CAP_DATA_DIR", str(tmp_path / "var"))
    settings = real_state(tmp_path / "var")
    bid = backups.backup_now(settings, now=NOW).manifest.backup_id
    ring = load_keyring(settings.layout.keyring)
    save_keyring(settings.layout.keyring, ring.model_copy(update={"version": ring.version + 11}))
    # a hand-made newer keyring has no signed link: drop the chain (legacy unsigned mode, no operator keys)
    (settings.layout.keyring.parent / "keyring.chain.json").unlink(missing_ok=True)

    refused = restore(backup_id=bid, return_state=True)
    assert refused.is_failed()
    text = _run_artifact(refused.state_details.flow_run_id, "restore-receipt")
    assert text.startswith(f"restore-{bid}\n# Restore of `{bid}`: FAILED at step check_key_metadata")
    assert "error `keyring_rollback`" in text and "is older than live v" in text
    assert "| 5 | check_policy_store | ok |" in text and "| 6 | check_key_metadata |" not in text

    drill = restore(backup_id=bid, verify_only=True, allow_key_rollback=True, return_state=True)
    text = _run_artifact(drill.state_details.flow_run_id, "restore-receipt")
    assert text.startswith(f"restore-{bid}-verify-only\n# Verification of `{bid}`: ok, 3 warning(s)")
    assert "**warning** `sqlite:database`: not in this backup" in text  # the fixture's other warning
    assert (
        f"**warning** `keyring`: version {ring.version} (live {ring.version + 11}) — a keyring rollback"
        in text
    )
