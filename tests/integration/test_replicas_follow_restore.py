"""Two live API processes on one data dir follow a restore with ``--allow-key-rollback`` (issue 16).

Before the fix they kept keyring v5 (they refuse lower versions) and said OK where ``cap verify`` said
FAIL. Now the restore raises the data-dir generation, both replicas reload, ``/readyz`` reports the
generation they serve, and the three verdicts agree.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from core import service
from core.generation import generation_number
from core.keys import KeyStore
from core.proof import proof_file_bytes
from core.settings import Settings
from tests.live import dev_token, free_port, prepare_data_dir, run_cap, serving, uvicorn_command
from tests.world import World

pytestmark = pytest.mark.slow


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "CAP_ENV": "dev",
        "CAP_DATA_DIR": str(tmp_path / "var"),
        "CAP_BUILD_DIR": str(tmp_path / "build"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def _api_verdict(url: str, token: str, proof: dict) -> str:
    response = httpx.post(
        f"{url}/verify", json={"proof": proof}, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    return str(response.json()["result"])


def _cli_verdict(env: dict[str, str], path: Path) -> str:
    done = run_cap("verify", "--proof", str(path), "--json", env=env)
    assert done.returncode in (0, 1, 3, 4), done.stderr  # a verdict (3: FAIL), never bad input/crash
    return str(json.loads(done.stdout)["result"]).upper()


def test_two_replicas_agree_with_cap_verify_after_a_key_rollback_restore(tmp_path):
    env = _env(tmp_path)
    prepare_data_dir(env)
    settings = Settings.from_env(env)
    now = datetime.now(UTC)
    lists = World(lists_built_at=now).lists_file  # trusted by every verifier of this data dir
    assert lists is not None
    service.install_lists(settings, lists, now, actor="test")
    old = run_cap("backup", env=env)
    assert old.returncode == 0, old.stderr
    for phase in ("0", "1", "2", "3"):
        step = run_cap("keys", "rotate", "--phase", phase, "--force", "--duration", "1h", env=env)
        assert step.returncode == 0, step.stderr
    ring = json.loads(settings.layout.keyring.read_text())
    assert ring["version"] == 5
    signer = KeyStore(settings.layout).signer(ring["default_signing_kid"])
    proof_path = tmp_path / "proof.json"
    proof_path.write_bytes(proof_file_bytes(World(signer=signer, lists_built_at=now).build().proof))
    proof = json.loads(proof_path.read_bytes())
    token = dev_token(env, ["verify:run"])
    ports = [free_port(), free_port()]
    with ExitStack() as stack:
        urls = [stack.enter_context(serving(uvicorn_command(p), env, p)) for p in ports]
        before = _cli_verdict(env, proof_path)
        assert before != "FAIL"  # WARN: signed by the active key, but this proof is not in the registry
        assert [_api_verdict(u, token, proof) for u in urls] == [before, before]
        restored = run_cap("restore", "--backup", old.stdout.strip(), "--allow-key-rollback", env=env)
        assert restored.returncode == 0, restored.stderr
        assert json.loads(settings.layout.keyring.read_text())["version"] == 1
        cli = _cli_verdict(env, proof_path)
        assert cli == "FAIL"  # the new key is unknown to keyring v1
        assert [_api_verdict(u, token, proof) for u in urls] == [cli, cli]
        generation = generation_number(settings.data_dir)
        for url in urls:
            ready = httpx.get(f"{url}/readyz", timeout=10).json()
            assert ready["status"] == "OK", ready
            assert ready["generation"] == generation
            keyring_check = next(c for c in ready["checks"] if c["name"] == "keyring")
            assert keyring_check["message"].startswith("v1,"), keyring_check
