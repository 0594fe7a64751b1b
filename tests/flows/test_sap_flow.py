"""The ``sap-ingest`` flow: one real run on the shared Prefect test server against the SAP mock over HTTP
(result, parameters, artifact, logs and stores checked for personal data); the task glue via ``.fn()``;
the retry condition; the ``sap-ingest-hourly`` deployment entry."""

from __future__ import annotations

import inspect
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from core.metrics import REGISTRY
from core.modes import CheckStatus
from core.registry import Registry
from core.settings import Settings
from deployments.sap_mock import create_app, running_server
from tests.integration.test_sap_pilot import NOW, SECRET_ENV, leaks, pii_values, pilot_dataset, write_config

REPO = Path(__file__).resolve().parents[2]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()}")

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def prefect_logs():
    """Every record of Prefect's loggers (which do not propagate to root, so caplog misses them) and httpx."""
    import prefect.main  # noqa: F401 - its import configures Prefect logging (dictConfig): attach after it

    handler = _Collect()
    loggers = [logging.getLogger(n) for n in ("prefect", "prefect.flow_runs", "prefect.task_runs", "httpx")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.xdist_group("prefect")
def test_sap_ingest_flow_run_is_ok_and_leaks_no_personal_data(
    prefect_api, tmp_path, monkeypatch, prefect_logs
):
    from prefect.artifacts import Artifact
    from prefect.client.orchestration import get_client

    from flows.sap_ingest import sap_ingest

    for var, value in {
        **SECRET_ENV,
        "CAP_DATA_DIR": str(tmp_path / "var"),
        "CAP_BUILD_DIR": str(tmp_path / "build"),
    }.items():
        monkeypatch.setenv(var, value)
    dataset = pilot_dataset(as_of=datetime.now(UTC).date())
    with running_server(create_app(dataset, 2)) as url:
        state = sap_ingest(config_path=str(write_config(tmp_path, url)), return_state=True)
    result = state.result()
    assert state.is_completed() and result["verdict"] == "ok" and result["verification"]["result"] == "ok"
    assert result["supplier_count"] > 25 and result["violations"] == {} and result["drift"] is None
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    artifact = Artifact.get("sap-ingest-report")
    assert artifact is not None and result["registry_id"] in str(artifact.data)
    with Registry(tmp_path / "var" / "registry.sqlite") as registry:
        proofs = "\n".join(e.proof_json for e in registry.entries())
    outputs = {
        "result": json.dumps(result),
        "parameters": json.dumps(run.parameters),
        "artifact": str(artifact.data),
        "registry": proofs,
        "audit": (tmp_path / "var" / "audit.jsonl").read_text(encoding="utf-8"),
        "metrics": generate_latest(REGISTRY).decode(),
        "logs": prefect_logs.text,
    }
    assert "SAP ingest LEI-PILOT" in prefect_logs.text  # the logs were captured at all
    values = pii_values(dataset)
    assert {where: leaks(text, values) for where, text in outputs.items()} == {k: [] for k in outputs}


def test_tasks_chain_through_fn(tmp_path):
    from tasks import sap as t

    settings = Settings(data_dir=tmp_path / "var", build_dir=tmp_path / "build", proof_scheme="v2")
    with running_server(create_app(pilot_dataset(), 4)) as url, pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAP_SAP_COMPANY_SECRET", SECRET_ENV["CAP_SAP_COMPANY_SECRET"])
        config = t.load_config.fn(str(write_config(tmp_path, url, odata_version=4)), "relaxed")
        extracted = t.extract.fn(config, NOW)
        lists = t.load_lists.fn(config, NOW)
        screened = t.screen.fn(config, extracted, lists)
        built = t.build_proof.fn(settings, config, screened, t.commit.fn(screened, NOW), lists, NOW)
        drift = t.drift.fn(settings, built)
        entry = t.register.fn(settings, built, NOW)
        verification = t.verify.fn(settings, config, built, NOW)
        result = t.summarise.fn(config, extracted, screened, built, entry, verification, drift)
    assert result.mode.value == "relaxed" and result.result is CheckStatus.OK and drift is None
    assert "Extracted(suppliers=" in repr(extracted) and "Screened(suppliers=" in repr(screened)
    markdown = t.report_markdown(result)
    assert result.registry_id in markdown and result.company_root in markdown


def test_io_tasks_use_the_shared_retry_condition():
    from tasks import sap as t
    from tasks.retry import retry_transient

    assert t.extract.retry_condition_fn is retry_transient and t.extract.retries == 2


def test_deployment_entry_matches_the_flow():
    from flows.sap_ingest import sap_ingest

    doc = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    [entry] = [d for d in doc["deployments"] if d["name"] == "sap-ingest-hourly"]
    assert entry["entrypoint"] == "flows/sap_ingest.py:sap_ingest"
    assert entry["schedules"] == [{"interval": 3600, "timezone": "UTC", "active": False}]
    assert set(entry["parameters"]) == set(inspect.signature(sap_ingest.fn).parameters)
    assert (REPO / entry["parameters"]["config_path"]).is_file()
