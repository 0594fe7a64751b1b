"""``cap serve`` and ``cap token`` as real subprocesses: startup, probes, clean shutdown, no orphans."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest

from core.proof import proof_file_bytes
from tests.live import free_port
from tests.paths import REPO
from tests.world import World

STARTUP_S = 150


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def env_for(root: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "CAP_DATA_DIR": str(root / "var"), "NO_COLOR": "1", **extra}
    for var in ("PREFECT_API_URL", "CAP_DEBUG", "CAP_JWKS_URL", "CAP_JWKS_FILE"):
        env.pop(var, None)
    return env


def start_serve(root: Path, *args: str, **extra: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "deployments.cli", "serve", "--port", str(port), *args],
        cwd=REPO,
        env=env_for(root, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, port


def wait_ready(proc: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("cap serve did not become ready")


def mint(root: Path, scope: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "deployments.cli", "token", "--scope", scope],
        cwd=REPO,
        env=env_for(root),
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.mark.slow
@pytest.mark.xdist_group("prefect")
def test_serve_with_prefect_probes_and_stops_cleanly(tmp_path):
    proc, port = start_serve(tmp_path, "--workers", "2", "--prefect-port", str(free_port()))
    try:
        wait_ready(proc, port)
        family = descendants(proc.pid)
        assert len(family) >= 4  # prefect server, runner, uvicorn supervisor + workers
        token = mint(tmp_path, "verify:run keys:read backup:create metrics:read")
        headers = {"Authorization": f"Bearer {token}"}
        base = f"http://127.0.0.1:{port}"
        keys = httpx.get(f"{base}/admin/keys", headers=headers, timeout=30)
        assert keys.json()["version"] == 1, keys.text
        proof = json.loads(proof_file_bytes(World().build().proof))
        verdict = httpx.post(f"{base}/verify", json={"proof": proof}, headers=headers, timeout=30).json()
        assert verdict["result"] == "FAIL"  # signed by a key this fresh keyring does not know
        assert httpx.post(f"{base}/admin/backups", headers=headers, timeout=30).status_code in (202, 503)
        for _ in range(4):  # spread over both workers: multiprocess metrics aggregate them
            httpx.get(f"{base}/healthz")
        metrics = httpx.get(f"{base}/metrics", headers=headers, timeout=30).text
        assert 'cap_verify_results_total{result="fail"} 1.0' in metrics
        assert 'cap_api_requests_total{endpoint="/healthz",status_code="200"}' in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0, proc.stderr.read()
    assert not [pid for pid in family if alive(pid)]
    key = tmp_path / "var" / "dev-issuer" / "private.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


@pytest.mark.slow
def test_serve_exits_nonzero_naming_the_child_that_died(tmp_path):
    proc, port = start_serve(tmp_path, "--no-prefect", "--workers", "1")
    try:
        wait_ready(proc, port)
        (api,) = [p for p in descendants(proc.pid) if "uvicorn" in Path(f"/proc/{p}/cmdline").read_text()]
        os.kill(api, signal.SIGKILL)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 1
    assert (
        "api exited" in proc.stderr.read()
    )  # after startup ("unexpectedly") or while the supervisor still polls


def test_token_prints_only_a_token_for_the_dev_issuer(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "deployments.cli",
            "token",
            "--scope",
            "verify:run policy:read",
            "--ttl",
            "120",
        ],
        cwd=REPO,
        env=env_for(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    token = out.stdout.strip()
    assert out.stdout == token + "\n"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["scope"] == "verify:run policy:read" and claims["exp"] - claims["iat"] == 120
    assert jwt.get_unverified_header(token)["alg"] == "ES256"


@pytest.mark.parametrize("command", [["token", "--scope", "verify:run"], ["serve", "--no-prefect"]])
def test_dev_issuer_refused_outside_dev(tmp_path, command):
    out = subprocess.run(
        [sys.executable, "-m", "deployments.cli", *command],
        cwd=REPO,
        env=env_for(tmp_path, CAP_ENV="prod"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert out.stdout == ""
    assert "dev_issuer_refused" in out.stderr
