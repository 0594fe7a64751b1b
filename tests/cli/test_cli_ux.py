"""What an operator sees at the terminal: ``cap --help`` without the domain's imports, help that never cuts an
option name at 80 columns, ``cap keys list`` with signer/membership/history, keygen that says when a new key
signs nothing, ``cap token`` refusing unknown scopes, and a hint under errors that have real options."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from deployments.cli import COMMANDS, _report_error, load_command
from tests.paths import REPO

HEAVY = ("prefect", "fastapi", "boto3", "botocore", "httpx", "pydantic", "core.service", "cryptography")


def _imported(*args: str) -> set[str]:
    """Top-level-and-below module names a ``cap`` run imports (from ``python -X importtime``)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "deployments.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    )
    return {
        line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")
    }


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_cap_help_imports_no_heavy_module_but_a_command_does():
    assert _heavy(_imported("--help")) == []
    assert "core.service" in _heavy(_imported("verify", "--help"))  # the check does see a heavy import


def _commands(command: click.Command, path: tuple[str, ...]):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_at_80_columns_shows_every_option_name_whole(name):
    for path, command in _commands(load_command(name), (name,)):
        with click.Context(command, info_name=" ".join(path), terminal_width=80, max_content_width=80) as ctx:
            text = command.get_help(ctx)
        assert "…" not in text, path
        for param in command.params:
            for opt in (*param.opts, *param.secondary_opts):
                assert opt in text, (path, opt)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_listed_short_help_is_the_commands_own(name):
    command = load_command(name)
    own = " ".join((command.help or "").split())
    assert own.startswith(COMMANDS[name].help.rstrip(".")), name


def test_cap_help_lists_every_command_in_full():
    import typer

    from deployments.cli import app

    result = CliRunner().invoke(typer.main.get_command(app), ["--help"], terminal_width=80)
    assert result.exit_code == 0 and all(f"  {name} " in result.output for name in COMMANDS)
    flat = " ".join(result.output.split())
    assert all(spec.help in flat for spec in COMMANDS.values())  # wrapped, never cut to "..."


def test_keys_list_shows_signer_membership_status_and_history(cap):
    first = cap("keys", "keygen", "--owner", "ACME GmbH")
    assert first.code == 0 and "default signer of a new keyring" in first.stderr
    second = cap("keys", "keygen", "--owner", "ACME GmbH", "--json")
    kid = second.json()["kid"]
    assert second.code == 0 and "signs nothing" in second.stderr and f"--new-kid {kid}" in second.stderr
    view = cap("keys", "list", "--json").json()
    rows = {k["kid"]: k for k in view["keys"]}
    assert rows[kid].get("keyring_status") is None and not rows[kid]["default_signer"]
    signer = view["default_signing_kid"]
    assert rows[signer]["default_signer"] and rows[signer]["keyring_status"] == "active"
    assert view["keyring_version"] == 1 and [e["action"] for e in view["history"]] == ["bootstrap"]
    cap.env["COLUMNS"] = "80"
    human = cap("keys", "list")
    assert human.code == 0 and kid in human.stdout and signer in human.stdout and "not a" in human.stdout
    assert "keyring history" in human.stdout and "bootstrap" in human.stdout


def test_token_refuses_an_unknown_scope(cap):
    cap.env["CAP_ENV"] = "dev"
    bad = cap("token", "--scope", "verify:run verify:everything")
    assert bad.code == 2 and "verify:everything" in bad.stderr and "policy:compile" in bad.stderr
    assert bad.stdout == ""


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("census_not_empty", "cap keys rotate --phase 2 --rollback", id="census"),
        pytest.param("dual_accept_active", "wait until dual_accept_until", id="window"),
    ],
)
def test_rotation_refusals_suggest_the_real_options(capsys, code, expected):
    from core.errors import RotationError

    _report_error(RotationError("refused", code=code))
    err = capsys.readouterr().err
    assert f"[{code}]" in err and expected in err and "--force" in err
