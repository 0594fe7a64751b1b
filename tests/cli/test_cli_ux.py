"""What an operator sees at the terminal: ``cap --help`` without the domain's imports, help that never cuts an
option name at 80 columns, ``cap keys list`` with signer/membership/history, keygen that says when a new key
signs nothing, ``cap token`` refusing unknown scopes, and a hint under errors that have real options."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import click
import pytest
from click.testing import CliRunner

from deployments.cli import COMMANDS, _report_error, load_command
from tests.paths import REPO

EXAMPLES = REPO / "examples"

HEAVY = ("prefect", "fastapi", "boto3", "botocore", "httpx", "pydantic", "core.service", "cryptography")


def _imported(*args: str, env: dict[str, str] | None = None) -> set[str]:
    """Top-level-and-below module names a ``cap`` run imports (from ``python -X importtime``)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "deployments.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin", **(env or {})},
    )
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return {
        line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")
    }


def _heavy(modules: set[str], heavy: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy))


def test_cap_help_imports_no_heavy_module_but_a_command_does():
    assert _heavy(_imported("--help")) == []
    assert "core.service" in _heavy(_imported("commit", "--help"))  # the check does see a heavy import


def test_commands_on_core_service_load_no_metrics_stack():
    """Every command that loads core.service (most of them) paid for prometheus_client and Litestream's probe
    before their events went through core/events.py: 0.1 s of each `cap` start."""
    modules = _imported("commit", "--help")
    assert "core.service" in modules
    assert _heavy(modules, ("prometheus_client", "core.metrics", "core.backup.replica")) == []


# What `cap verify` must not load: the server, flow, S3 and HTTP stacks, and the domain code only other
# commands use (prover, policy compiler + YAML, list refresh, SAP, near-match screening, drift scoring).
VERIFY_HEAVY = (
    "prefect",
    "fastapi",
    "starlette",
    "uvicorn",
    "boto3",
    "botocore",
    "httpx",
    "schemathesis",
    "rapidfuzz",
    "yaml",
    "core.service",
    "core.prover",
    "core.policy.compile",
    "core.lists_refresh",
    "core.sap",
    "core.drift",
    "disarm",  # confusable tables: only keying a non-ASCII name needs them
    "prometheus_client",  # metric events: only a process someone scrapes records them (core/events.py)
    "core.metrics",
    "core.zk.mcl",  # the pairing library: only a cap-proof.v3 needs it (this proof is v2)
)


@pytest.fixture
def verifiable(tmp_path):
    """A data dir with the keyring and installed lists of the test world, and one small proof it accepts."""
    from core.fsio import atomic_write
    from core.keyring import save_keyring
    from core.proof import proof_file_bytes
    from core.screening import save_lists
    from core.settings import Settings
    from tests.world import World

    world = World(lists_built_at=datetime.now(UTC))
    settings = Settings(data_dir=tmp_path / "var")
    save_keyring(settings.layout.keyring, world.keyring)
    save_lists(settings.layout.lists_dir / "lists.json", world.lists_file)
    proof = tmp_path / "proof.json"
    atomic_write(proof, proof_file_bytes(world.build().proof))
    return proof, {"CAP_DATA_DIR": str(settings.data_dir)}


def _cap_verify(proof, env, *args: str, json_out: bool = True) -> subprocess.CompletedProcess[str]:
    """``cap verify`` of ``proof`` in a fresh process with only ``env`` (and PATH); asserts it exited 0."""
    argv = [sys.executable, "-m", "deployments.cli", "verify", "--proof", str(proof), *args]
    result = subprocess.run(
        [*argv, "--json"] if json_out else argv,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_cap_verify_imports_only_what_verifying_needs(verifiable):
    proof, env = verifiable
    result = _cap_verify(proof, env)
    checks = {c["id"]: c["status"] for c in json.loads(result.stdout)["checks"]}
    assert checks["proof_signature"] == checks["list_root"] == "ok"  # it did verify, not fail early
    modules = _imported("verify", "--proof", str(proof), env=env)
    assert "core.verify" in modules
    assert _heavy(modules, VERIFY_HEAVY) == []


def test_verify_report_at_80_columns_folds_and_never_cuts_a_key_id(verifiable):
    proof, env = verifiable
    result = _cap_verify(proof, {"COLUMNS": "80", "NO_COLOR": "1", **env}, json_out=False)
    assert "…" not in result.stdout
    rows = [line for line in result.stdout.splitlines() if "│" in line]
    assert max(len(line) for line in rows) <= 80  # the table fits; the summary line is left to the terminal
    kid = json.loads(proof.read_text())["manifest"]["signatures"][0]["kid"]
    cells = "".join(line.rsplit("│", 2)[-2].strip() for line in rows)
    assert kid in cells  # folded over lines of the message column, but whole


def test_verify_import_check_sees_the_rare_paths(verifiable):
    proof, env = verifiable
    pinned = _imported(
        "verify", "--proof", str(proof), "--policy", str(EXAMPLES / "policy.lksg.v1.yml"), env=env
    )
    assert {"yaml", "core.policy.compile"} <= set(_heavy(pinned, VERIFY_HEAVY))
    drift = _imported("verify", "--proof", str(proof), "--drift-detect", env=env)
    assert "core.drift" in _heavy(drift, VERIFY_HEAVY)


def test_verify_pointed_at_a_metrics_dir_records_its_events_there(verifiable, tmp_path, monkeypatch):
    """A plain ``cap verify`` loads no metrics code; one run with the service's
    ``PROMETHEUS_MULTIPROC_DIR`` (as every child of ``cap serve`` has) still counts its verdict and
    enforcement where ``/metrics`` reads them."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from core.metrics import ObservedState, scrape_registry

    proof, env = verifiable
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    for _ in range(2):
        result = _cap_verify(proof, {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), **env})
    verdict = json.loads(result.stdout)["result"]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    text = generate_latest(scrape_registry(ObservedState())).decode()
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert got[("cap_verify_results_total", (("result", verdict),))] == 2
    assert got[("cap_enforce_total", (("result", "success"),))] == 2


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
