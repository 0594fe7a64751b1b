"""What the Prefect UI shows of each flow's run form: titles, descriptions, enums with readable labels,
defaults, and never a null-typed ("None") widget. Read from the parameter JSON schema Prefect stores with the
deployment (no server needed), and the checker is itself shown to catch an Optional parameter."""

from __future__ import annotations

import pytest

from core.rotation import RotationPhase
from flows.forms import Decision, PhaseChoice, RotationApproval, approval_form


def _schema(flow_obj) -> dict:
    from prefect.utilities.callables import parameter_schema

    return parameter_schema(flow_obj).model_dump()


def _form_problems(schema: dict) -> list[str]:
    """Fields a person could not fill sensibly: no title beyond the name, no description, a null type."""
    problems = []
    for name, prop in schema["properties"].items():
        if prop.get("title") in (None, name):
            problems.append(f"{name}: no title")
        if not prop.get("description"):
            problems.append(f"{name}: no description")
        if "anyOf" in prop or prop.get("type") == "null":
            problems.append(f"{name}: null-typed widget")
        if name not in schema.get("required", []) and "default" not in prop:
            problems.append(f"{name}: optional without a default shown")
    return problems


def _flows():
    from flows.restore import restore
    from flows.rotation import rotate_signing_key
    from flows.verification import verification_run

    return {
        "rotate-signing-key": rotate_signing_key,
        "restore": restore,
        "verification-run": verification_run,
    }


@pytest.mark.parametrize("name", ["rotate-signing-key", "restore", "verification-run"])
def test_every_form_field_has_a_title_a_description_and_no_none_widget(name):
    assert _form_problems(_schema(_flows()[name])) == []


def test_the_checker_catches_an_optional_parameter_and_a_bare_name():
    from prefect import flow

    @flow
    def sloppy(x: str | None = None, y: int = 3) -> None: ...

    problems = _form_problems(_schema(sloppy))
    assert (
        "x: null-typed widget" in problems and "y: no title" in problems and "y: no description" in problems
    )


def test_rotation_phase_is_an_enum_whose_labels_say_what_each_phase_does():
    schema = _schema(_flows()["rotate-signing-key"])
    ref = schema["properties"]["phase"]["$ref"].rsplit("/", 1)[-1]
    labels = schema["definitions"][ref]["enum"]
    assert labels[0] == "0 — prepare new key" and labels[2].startswith("2 — sign-switch")
    assert [PhaseChoice(label).phase for label in labels] == list(RotationPhase)
    assert "phase" in schema["required"] and schema["properties"]["duration"]["default"] == "168h"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(2, PhaseChoice.SIGN_SWITCH, id="int"),
        pytest.param("3", PhaseChoice.DECOMMISSION, id="digit"),
        pytest.param("dual-accept", PhaseChoice.DUAL_ACCEPT, id="name"),
        pytest.param("0 — prepare new key", PhaseChoice.PREPARE, id="label"),
    ],
)
def test_phase_choice_accepts_the_label_a_number_or_the_name(given, expected):
    assert PhaseChoice(given) is expected


@pytest.mark.parametrize("bad", [4, "-1", "sign switch now", ""])
def test_phase_choice_refuses_anything_else(bad):
    with pytest.raises(ValueError):
        PhaseChoice(bad)


def test_approval_form_requires_a_decision_and_an_approver_and_carries_the_plan():
    form = approval_form("### the plan", "digest-1", ())
    schema = form.model_json_schema()
    assert set(schema["required"]) == {"decision", "approver"}
    assert schema["properties"]["plan_digest"]["default"] == "digest-1"
    assert form._description == "### the plan"
    assert {d.value for d in Decision} == {"approve", "reject"}
    answer = form(decision="reject", approver="bob")
    assert not answer.approved and answer.plan_digest == "digest-1"


def test_approval_form_limits_the_approver_to_the_configured_names():
    from pydantic import ValidationError

    form = approval_form("plan", "d", ("alice", "carol"))
    assert form.model_json_schema()["properties"]["approver"]["enum"] == ["alice", "carol"]
    assert form(decision="approve", approver="carol").approved
    with pytest.raises(ValidationError):
        form(decision="approve", approver="mallory")
    with pytest.raises(ValidationError):
        RotationApproval(decision="approve", approver="", plan_digest="d")
