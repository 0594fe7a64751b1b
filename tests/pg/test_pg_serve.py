"""Two nodes on one PostgreSQL: two ``cap serve --no-prefect`` processes with separate data dirs (as two nodes
would have) against one database. Their stores are created in the database, not under either data dir; while
both verify concurrently, two writers register proofs; both compile and store the same policy; an operator
rotates the keyring. No registry write is lost, no id repeats, both give the same verdict on the same proof,
both store the policy once, and both serve the new keyring version within the polling bound. Then a backup
taken at the start is restored (ADR 0015) while both serve: both give the same verdict on the restored state
and the next id continues after every id handed out before."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime

import httpx

from core import service
from core.backup import service as backups
from core.modes import CheckStatus
from core.proof import proof_file_bytes
from core.rotation import RotationPhase, RotationRequest
from core.settings import Settings
from core.store import audit_log, open_policy_store, open_registry
from core.store.postgres.db import close_all
from tests.live import cap_serve_command, dev_token, free_port, wait_for
from tests.paths import REPO
from tests.world import POLICY, World

WRITES_PER_WRITER = 15
VERIFIES_PER_NODE = 12


def _node_env(root, pg_url):
    env = {**os.environ, "CAP_DATA_DIR": str(root), "CAP_DATABASE_URL": pg_url, "NO_COLOR": "1"}
    for var in ("PREFECT_API_URL", "CAP_JWKS_URL", "CAP_JWKS_FILE", "CAP_REPLICA_URL"):
        env.pop(var, None)
    return env


@contextlib.contextmanager
def _nodes(envs):
    """Both servers started at once; their URLs once both answer."""
    ports = [free_port() for _ in envs]
    procs = [
        subprocess.Popen(
            cap_serve_command(p),
            cwd=REPO,
            env=e,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p, e in zip(ports, envs, strict=True)
    ]
    try:
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        for url, proc in zip(urls, procs, strict=True):
            wait_for(url, proc, timeout=120)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _keyring_version(url):
    checks = httpx.get(f"{url}/readyz", timeout=10).json()["checks"]
    return next(c["message"] for c in checks if c["name"] == "keyring").split(",")[0]


def test_two_nodes_share_one_postgresql_state(tmp_path, pg_url):
    envs = [_node_env(tmp_path / "node-a", pg_url), _node_env(tmp_path / "node-b", pg_url)]
    a, b = (Settings.from_env(e) for e in envs)
    now = datetime.now(UTC)
    service.keygen(
        a, now=now
    )  # the operator provisions the keyring once; the key reaches every node (a Secret)
    shutil.copytree(a.layout.keys_dir, b.layout.keys_dir)
    signer = service.default_signer(a)
    world = World(signer=signer, lists_built_at=now)
    service.install_lists(a, world.lists_file, now)  # in the database: in force on both nodes
    built = world.build()
    service.register_proof(a, built.proof, CheckStatus.OK, signer, now)
    backup_id = backups.backup_now(a, now=now).manifest.backup_id
    body = {"proof": json.loads(proof_file_bytes(built.proof))}
    try:
        with _nodes(envs) as urls:
            headers = [
                {"Authorization": f"Bearer {dev_token(e, ['verify:run', 'policy:compile', 'policy:write'])}"}
                for e in envs
            ]
            verdicts: list[tuple[int, str, str]] = []
            errors: list[BaseException] = []

            def verify(node):
                try:
                    for _ in range(VERIFIES_PER_NODE):
                        r = httpx.post(
                            f"{urls[node]}/verify", json=body, headers=headers[node], timeout=30
                        ).json()
                        registry = next(c for c in r["checks"] if c["id"] == "registry")
                        verdicts.append((node, r["result"], registry["message"]))
                except BaseException as exc:
                    errors.append(exc)

            def write(settings):
                try:
                    for _ in range(WRITES_PER_WRITER):  # as each node's services would (cap proof build, SAP)
                        service.register_proof(
                            settings, built.proof, CheckStatus.OK, signer, datetime.now(UTC)
                        )
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=verify, args=(n,)) for n in (0, 1)]
            threads += [threading.Thread(target=write, args=(s,)) for s in (a, b)]
            for t in threads:
                t.start()
            compiled = [
                httpx.post(
                    f"{u}/policy/compile",
                    json={"policy_yaml": POLICY, "persist": True},
                    headers=h,
                    timeout=30,
                )
                for u, h in zip(urls, headers, strict=True)
            ]
            for t in threads:
                t.join()
            assert errors == []

            request = RotationRequest(phase=RotationPhase.PREPARE, force=True)
            service.rotate_signing_key(a, request, datetime.now(UTC))  # an operator's step, on one node
            deadline = time.monotonic() + 10
            while {_keyring_version(u) for u in urls} != {"v2"} and time.monotonic() < deadline:
                time.sleep(0.2)
            assert [_keyring_version(u) for u in urls] == ["v2", "v2"]
            after = [
                httpx.post(f"{u}/verify", json=body, headers=h, timeout=30).json()
                for u, h in zip(urls, headers, strict=True)
            ]
            ids = [e.id for e in open_registry(a).entries()]
            policies = [p.id for p in open_policy_store(a).list()]
            report = audit_log(a).verify()
            # the start's backup restored on node a (holds the rotated key) while both serve; keyring kept
            backups.restore_now(a, backup_id, now=datetime.now(UTC), keyring_merge=True)
            restored = [
                httpx.post(f"{u}/verify", json=body, headers=h, timeout=30).json()
                for u, h in zip(urls, headers, strict=True)
            ]
            next_id = service.register_proof(b, built.proof, CheckStatus.OK, signer, datetime.now(UTC)).id
            restored_ids = sorted(e.id for e in open_registry(b).entries())
    finally:
        close_all()

    assert {result for _, result, _ in verdicts} == {"OK"}
    assert {message.split(" as ")[0] for _, _, message in verdicts} == {"registered"}
    assert len(verdicts) == 2 * VERIFIES_PER_NODE
    assert [r["result"] for r in after] == ["OK", "OK"] and after[0]["checks"] == after[1]["checks"]
    assert [c.status_code for c in compiled] == [200, 200]
    assert sorted(ids) == sorted(f"proof_{n:03d}" for n in range(1, 2 + 2 * WRITES_PER_WRITER))
    assert policies == [compiled[0].json()["policy_id"]]
    assert report.ok and report.total >= 1
    assert [r["result"] for r in restored] == ["OK", "OK"] and restored[0]["checks"] == restored[1]["checks"]
    assert next_id == f"proof_{2 + 2 * WRITES_PER_WRITER:03d}"  # never one handed out before the restore
    assert restored_ids == ["proof_001", next_id]
    assert audit_log(a).verify().ok
    for node in ("node-a", "node-b"):
        assert not any(
            (tmp_path / node / name).exists()
            for name in ("registry.sqlite", "policies.sqlite", "audit.jsonl", "keyring.json", "lists")
        )
    close_all()
