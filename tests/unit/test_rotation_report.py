"""``core.rotation_report``: the digest an approval names, the approver put into the approved plan, the
approval text and the record of a run; and a phase-0 dry run that names no key id that will never exist."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from core import rotation_report as rr
from core import service
from core.keyring import load_keyring
from core.rotation import make_request
from core.settings import Settings

NOW = datetime(2026, 12, 6, 11, 0, tzinfo=UTC)


def _at_phase_1(tmp_path) -> Settings:
    settings = Settings(data_dir=tmp_path / "var")
    service.keygen(settings, now=NOW, owner="Test Co")
    for phase in (0, 1):
        service.rotate_signing_key(settings, make_request(phase, actor="t"), NOW)
    return settings


def _sign_switch_plan(settings: Settings, at: datetime = NOW):
    request = make_request(2, actor=rr.APPROVER_PLACEHOLDER)
    return service.plan_rotation(load_keyring(settings.layout.keyring), request, at)


def test_the_digest_names_the_keyring_written_so_a_changed_plan_has_another(tmp_path):
    settings = _at_phase_1(tmp_path)
    plan = _sign_switch_plan(settings)
    assert rr.plan_digest(plan) == rr.plan_digest(_sign_switch_plan(settings))
    later = _sign_switch_plan(settings, NOW + timedelta(seconds=1))  # another timestamp is another plan
    assert rr.plan_digest(later) != rr.plan_digest(plan)


def test_the_approver_replaces_the_placeholder_in_the_new_events_only(tmp_path):
    settings = _at_phase_1(tmp_path)
    plan = _sign_switch_plan(settings)
    approved = rr.with_approver(plan, "alice")
    assert approved.after.history[-1].actor == "alice" and approved.request.actor == "alice"
    assert approved.after.history[:-1] == plan.after.history[:-1]
    assert approved.after.model_copy(update={"history": ()}) == plan.after.model_copy(update={"history": ()})
    assert approved.after.history[-1].at == plan.after.history[-1].at  # the approved timestamps stay


def test_approval_text_shows_plan_deadlines_and_approvers(tmp_path):
    settings = _at_phase_1(tmp_path)
    plan = _sign_switch_plan(settings)
    text = rr.approval_text(plan, now=NOW, timeout=timedelta(hours=1), approvers=("alice", "bob"))
    assert "answer by 2026-12-06T12:00:00Z (3600 s)" in text
    assert f"dual-accept ends {plan.before.dual_accept_until}" in text
    assert all(f"`{line}`" in text for line in plan.diff) and "`alice`, `bob`" in text
    anyone = rr.approval_text(plan, now=NOW, timeout=timedelta(hours=1), approvers=())
    assert "anyone who may resume runs" in anyone


def test_phase_0_dry_run_names_no_throwaway_key(tmp_path):
    settings = Settings(data_dir=tmp_path / "var")
    old = service.keygen(settings, now=NOW, owner="Test Co").kid
    dry = service.rotate_signing_key(settings, make_request(0, actor="t"), NOW, dry_run=True)
    kids = {k for line in dry.diff for k in re.findall(r"[0-9a-f]{32}", line)}
    assert dry.new_kid is None and kids <= {old} and any(service.PREVIEW_KEY in line for line in dry.diff)
    applied = service.rotate_signing_key(settings, make_request(0, actor="t"), NOW)
    assert applied.new_kid and any(applied.new_kid in line for line in applied.diff)


def test_record_markdown_has_result_approver_and_times():
    record = rr.RotationRecord(
        action="sign-switch",
        result=rr.StepResult.REJECTED,
        old_kid="a" * 32,
        new_kid="b" * 32,
        version_before=3,
        version_after=3,
        diff=("default_signing_kid: a -> b",),
        planned_at="2026-12-06T11:00:00Z",
        decided_at="2026-12-06T11:05:00Z",
        approver="bob",
        comment="not today",
    )
    text = rr.record_markdown(record)
    assert text.startswith("# Key rotation: sign-switch — rejected")
    assert "| approver | bob |" in text and "| decided at | 2026-12-06T11:05:00Z |" in text
    assert "| applied at | - |" in text and "- `default_signing_kid: a -> b`" in text
