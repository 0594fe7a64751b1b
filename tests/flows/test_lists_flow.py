"""The ``lists-refresh`` flow, run for real: it installs the lists, publishes the artifact and
``cap.lists.changed``; a second run over the same sources changes nothing and emits no event."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.cli.conftest import EXAMPLES
from tests.paths import FIXTURES

pytestmark = pytest.mark.xdist_group("prefect")


def test_lists_refresh_flow_installs_publishes_and_then_is_a_no_op(prefect_api, tmp_path, captured_events):
    from prefect.artifacts import Artifact

    from flows.lists_refresh import lists_refresh

    data = tmp_path / "var"
    (data / "lists").mkdir(parents=True)
    sources = {
        "schema": "cap-list-sources.v1",
        "sanctions": [
            {
                "format": "ofac",
                "path": str(FIXTURES / "ofac" / "sdn.csv"),
                "alt": {"path": str(FIXTURES / "ofac" / "alt.csv")},
            },
            {"format": "un", "path": str(FIXTURES / "un_consolidated_extract.xml")},
        ],
        "high_risk": {"path": str(EXAMPLES / "high_risk.csv")},
    }
    (data / "lists" / "sources.yaml").write_text(yaml.safe_dump(sources))

    first = lists_refresh(data_dir=str(data))
    assert first["changed"] is True and first["previous_root"] is None
    installed = json.loads((data / "lists" / "lists.json").read_text())
    assert installed["sanctions_root"] == first["sanctions_root"]
    artifact = Artifact.get("lists-refresh")
    assert "Lists refresh: changed" in artifact.data and first["sanctions_root"] in artifact.data

    second = lists_refresh(data_dir=str(data))
    assert second["changed"] is False and second["previous_root"] == first["sanctions_root"]
    assert "Lists refresh: unchanged" in Artifact.get("lists-refresh").data

    captured_events.wait_until_empty()
    changed = [e for e in captured_events._client.events if e.event == "cap.lists.changed"]
    assert [e.payload["sanctions_root"] for e in changed] == [first["sanctions_root"]]


def test_deployment_entry_matches_the_flow():
    import inspect

    from flows.lists_refresh import lists_refresh
    from tests.paths import REPO

    (entry,) = [
        d
        for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
        if d["name"] == "lists-refresh-daily"
    ]
    assert entry["entrypoint"] == "flows/lists_refresh.py:lists_refresh"
    assert set(entry["parameters"]) == set(inspect.signature(lists_refresh.fn).parameters)
    (schedule,) = entry["schedules"]
    assert schedule["cron"] and schedule["active"] is False  # on once sources.yaml names real sources
    assert entry["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
