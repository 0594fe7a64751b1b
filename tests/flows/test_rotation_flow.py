"""The ``rotate-signing-key`` flow on the shared Prefect test server: a paused sign-switch resumed with a
typed approval from another thread, then a forced decommission (two real flow runs in all)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from core import service
from core.keyring import KeyringMode, load_keyring
from core.keys import KeyStatus, KeyStore
from core.rotation import make_request
from core.settings import Settings

pytestmark = pytest.mark.xdist_group("prefect")


def _resume_when_paused(flow_name: str, run_input: dict, done: dict) -> None:
    """Wait (up to 60 s) for a paused run of ``flow_name``, then resume it with ``run_input``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateName,
    )
    from prefect.flow_runs import resume_flow_run

    flows = FlowFilter(name=FlowFilterName(any_=[flow_name]))
    paused = FlowRunFilter(state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Paused"])))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(flow_filter=flows, flow_run_filter=paused)
        if runs:
            resume_flow_run(runs[0].id, run_input=run_input)
            done["resumed"] = runs[0].id
            return
        time.sleep(0.3)


def test_sign_switch_pauses_for_approval_then_decommission_forced(prefect_api, tmp_path, monkeypatch):
    from flows.rotation import rotate_signing_key

    monkeypatch.setenv("CAP_DATA_DIR", str(tmp_path / "var"))
    settings = Settings.from_env()
    now = datetime.now(UTC)
    old = service.keygen(settings, now=now, owner="Test Co").kid
    for phase in (0, 1):  # the CLI path; the flow continues the same rotation
        service.rotate_signing_key(settings, make_request(phase, actor="test"), now)

    done: dict = {}
    resumer = threading.Thread(
        target=_resume_when_paused,
        args=("rotate-signing-key", {"approve": True, "approver": "alice"}, done),
        daemon=True,
    )
    resumer.start()
    switched = rotate_signing_key(phase=2, approval_timeout_seconds=60)
    resumer.join(timeout=5)
    assert "resumed" in done
    keyring = load_keyring(settings.layout.keyring)
    assert switched["verified_signer"] == keyring.default_signing_kid != old
    assert keyring.history[-1].actor == "alice" and keyring.history[-1].action == "sign-switch"

    retired = rotate_signing_key(phase=3, force=True)
    keyring = load_keyring(settings.layout.keyring)
    assert retired["version_after"] == keyring.version == 5 and keyring.mode is KeyringMode.SINGLE_KEY
    assert KeyStore(settings.layout).get(old).status is KeyStatus.RETIRED
    assert (settings.data_dir / service.SIGNING_VALUES_FILE).read_text().count("retired") == 1
