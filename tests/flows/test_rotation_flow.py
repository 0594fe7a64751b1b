"""The ``rotate-signing-key`` flow on the shared Prefect test server, as an operator lives it: phases 0 and 1
unattended, a sign-switch whose approval form shows the plan and is answered from another thread (rejected
first: Cancelled with one line; then approved with a stale digest: asked again; then approved), then a forced
decommission. Checks run names, the ``key-rotation`` artifacts and that the approved plan (its timestamps
included) is what lands in the keyring."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from core import service
from core.keyring import KeyringMode, load_keyring, save_keyring
from core.keys import KeyStatus, KeyStore
from core.settings import Settings

pytestmark = pytest.mark.xdist_group("prefect")


def _paused_runs(flow_name: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateName,
    )

    flows = FlowFilter(name=FlowFilterName(any_=[flow_name]))
    paused = FlowRunFilter(state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Paused"])))
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_filter=flows, flow_run_filter=paused)


def _form_of(run) -> dict:
    """The approval form the paused run offers (its JSON schema, description included)."""
    from prefect.client.orchestration import get_client

    keyset = run.state.state_details.run_input_keyset
    with get_client(sync_client=True) as client:
        form = json.loads(client.read_flow_run_input(run.id, keyset["schema"]))
        form["description"] = json.loads(client.read_flow_run_input(run.id, keyset["description"]))
    return form


def _answer_pauses(answers: list[Callable[[object, dict], dict]], seen: list) -> None:
    """Answer each successive pause of the rotation with the next function's run input (60 s at most)."""
    from prefect.flow_runs import resume_flow_run

    deadline, last = time.monotonic() + 60, None
    while answers and time.monotonic() < deadline:
        runs = _paused_runs("rotate-signing-key")
        if runs and runs[0].state.id != last:
            run, last = runs[0], runs[0].state.id
            form = _form_of(run)
            seen.append((run.name, form))
            resume_flow_run(run.id, run_input=answers.pop(0)(run, form))
        time.sleep(0.3)


def _in_thread(answers, seen) -> threading.Thread:
    thread = threading.Thread(target=_answer_pauses, args=(answers, seen), daemon=True)
    thread.start()
    return thread


def _artifact(run_id) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    return "\n".join(a.data for a in found if a.key == "key-rotation")


def _run(flow_fn, **params):
    from prefect.client.orchestration import get_client

    state = flow_fn(**params, return_state=True)
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    return state, run


def test_rotation_through_the_forms_with_rejection_stale_approval_and_artifacts(
    prefect_api, tmp_path, monkeypatch
):
    from flows.rotation import rotate_signing_key

    monkeypatch.setenv("CAP_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CAP_ROTATION_APPROVERS", "alice,bob")
    settings = Settings.from_env()
    old = service.keygen(settings, now=datetime.now(UTC), owner="Test Co").kid

    state, run = _run(rotate_signing_key, phase="0 — prepare new key")
    assert state.is_completed() and run.name.startswith("rotate-phase-0-prepare-")
    new = state.result()["new_kid"]
    assert f"`{old}` → `{new}`" in _artifact(run.id) and "preview" not in _artifact(run.id)
    state, run = _run(rotate_signing_key, phase=1, duration="2h")
    assert state.is_completed() and run.name.startswith("rotate-phase-1-dual-accept-")
    until = load_keyring(settings.layout.keyring).dual_accept_until

    # 1. rejected: Cancelled with one line, keyring untouched, artifact says who and why
    seen: list = []
    _in_thread([lambda r, f: {"decision": "reject", "approver": "bob", "comment": "not today"}], seen)
    state, run = _run(rotate_signing_key, phase=2, approval_timeout_seconds=60)
    assert state.is_cancelled() and state.message == "sign-switch rejected by bob: not today"
    assert load_keyring(settings.layout.keyring).version == 3
    assert "| approver | bob |" in _artifact(run.id) and "rejected" in _artifact(run.id)
    name, form = seen[0]
    assert name.startswith("rotate-phase-2-sign-switch-")
    assert set(form["required"]) == {"decision", "approver"} and form["properties"]["approver"]["enum"] == [
        "alice",
        "bob",
    ]
    assert f"dual-accept ends {until}" in form["description"] and "answer by" in form["description"]
    assert (
        f"default_signing_kid: {old} -> {new}" in form["description"]
        and "`alice`, `bob`" in form["description"]
    )

    # 2. approved, but the keyring moved on meanwhile and then a wrong digest: asked again each time
    def approve_after_a_concurrent_write(run, form):
        ring = load_keyring(settings.layout.keyring)
        save_keyring(settings.layout.keyring, ring.model_copy(update={"version": ring.version + 1}))
        # an unsigned hand-made write: drop the chain (legacy unsigned mode, no operator keys pinned)
        (settings.layout.keyring.parent / "keyring.chain.json").unlink(missing_ok=True)
        return {"decision": "approve", "approver": "alice"}

    seen = []
    answers = [
        approve_after_a_concurrent_write,
        lambda r, f: {"decision": "approve", "approver": "alice", "plan_digest": "0" * 64},
        lambda r, f: {"decision": "approve", "approver": "alice", "comment": "ticket 42"},
    ]
    _in_thread(answers, seen)
    state, run = _run(rotate_signing_key, phase=2, approval_timeout_seconds=60)
    assert state.is_completed() and len(seen) == 3 and not answers
    keyring = load_keyring(settings.layout.keyring)
    assert keyring.default_signing_kid == new == state.result()["verified_signer"]
    last = keyring.history[-1]
    assert (last.actor, last.action, keyring.version) == ("alice", "sign-switch", 5)
    approved_plan = seen[2][1]["description"]
    assert "history v5 sign-switch by approver" in approved_plan  # the plan shown is the plan applied
    text = _artifact(run.id)
    assert (
        "| approver | alice |" in text
        and "| comment | ticket 42 |" in text
        and f"planned at | {last.at}" in text
    )

    state, run = _run(rotate_signing_key, phase=3, force=True)
    keyring = load_keyring(settings.layout.keyring)
    assert state.result()["version_after"] == keyring.version == 6 and keyring.mode is KeyringMode.SINGLE_KEY
    assert KeyStore(settings.layout).get(old).status is KeyStatus.RETIRED
    assert "not needed" in _artifact(run.id)
    assert (settings.data_dir / service.SIGNING_VALUES_FILE).read_text().count("retired") == 1


def test_an_unanswered_approval_ends_cancelled_and_changes_nothing(prefect_api, tmp_path, monkeypatch):
    from flows.rotation import rotate_signing_key

    monkeypatch.setenv("CAP_DATA_DIR", str(tmp_path / "var"))
    settings = Settings.from_env()
    service.keygen(settings, now=datetime.now(UTC), owner="Test Co")
    for phase in (0, 1):
        assert _run(rotate_signing_key, phase=phase)[0].is_completed()
    state, run = _run(rotate_signing_key, phase=2, approval_timeout_seconds=1)
    assert state.is_cancelled() and state.message == "sign-switch not approved within 1 s; nothing changed"
    assert load_keyring(settings.layout.keyring).version == 3
    assert "not answered" in _artifact(run.id)
