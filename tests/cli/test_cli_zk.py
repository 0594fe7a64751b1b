"""``cap zk``: a whole phase-2 ceremony through the real CLI, then the ways verify-setup must refuse it.

Uses the cached development phase-1 file as the "operator-supplied" ptau: snarkjs verifies it like any public
ceremony file, and the transcript marks it not for production because it is our own beacon-only file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from core.zk.ceremony import dev_phase1
from deployments.errors import EXIT_FAIL, EXIT_INPUT
from tests.cli.conftest import Result
from tests.paths import REPO
from tests.zk import world

CEREMONY = pytest.mark.skipif(
    os.environ.get("CAP_ZK_CEREMONY_TESTS") != "1",
    reason="a full ceremony is minutes of CPU: `make test-zk-ceremony` runs it",
)
pytestmark = pytest.mark.slow


class _Slow:
    """The shared ``cap`` runner with a timeout fit for ceremony steps (snarkjs verification is minutes)."""

    def __init__(self, cap) -> None:
        self.cap = cap

    def __call__(self, *args):
        proc = subprocess.run(
            [sys.executable, "-m", "deployments.cli", *map(str, args)],
            cwd=REPO,
            env=self.cap.env,
            capture_output=True,
            text=True,
            timeout=1500,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)


@CEREMONY
@pytest.mark.timeout(1800)
def test_ceremony_setup_contribute_beacon_verify_and_tampering(cap, tmp_path):
    cap = _Slow(cap)
    world.setup()  # the compiled circuit and development phase 1 are cached
    ptau = dev_phase1(12)
    setup_dir = tmp_path / "setup"

    started = cap("zk", "setup", "--ptau", ptau, "--out", setup_dir, "--json")
    assert started.code == 0, started.stderr
    assert started.json()["phase1"]["production"] is False  # our own beacon-only phase 1 is recognised
    first = cap("zk", "contribute", setup_dir, "--name", "alice", "--json")
    second = cap("zk", "contribute", setup_dir, "--name", "bob", "--json")
    assert first.code == second.code == 0, first.stderr + second.stderr
    assert first.json()["contribution_hash"] != second.json()["contribution_hash"]
    closed = cap("zk", "beacon", setup_dir, "--beacon", "ab" * 32, "--json")
    assert closed.code == 0, closed.stderr
    vk_hash = closed.json()["final"]["vk_hash"]
    assert vk_hash != world.setup().vk.vk_hash  # real contributions: not the deterministic dev key

    verified = cap("zk", "verify-setup", setup_dir, "--json")
    assert verified.code == 0, verified.stderr
    assert [s["name"] for s in verified.json()["steps"]] == ["alice", "bob", "final beacon"]

    # A final key swapped for an intermediate one: refused before snarkjs even runs.
    shutil.copy(setup_dir / "0001.zkey", setup_dir / "final.zkey")
    swapped = cap("zk", "verify-setup", setup_dir)
    assert swapped.code == EXIT_FAIL
    assert "zk_setup_invalid" in swapped.stderr

    # The setup is closed: no more contributions after the beacon.
    late = cap("zk", "contribute", setup_dir, "--name", "mallory")
    assert late.code == EXIT_INPUT and "closed" in late.stderr


@CEREMONY
def test_setup_refuses_a_corrupted_phase1_file(cap, tmp_path):
    cap = _Slow(cap)
    bad = tmp_path / "bad.ptau"
    data = bytearray(dev_phase1(12).read_bytes())
    data[len(data) // 2] ^= 0x01
    bad.write_bytes(bytes(data))
    result = cap("zk", "setup", "--ptau", bad, "--out", tmp_path / "s")
    assert result.code == EXIT_FAIL, result.stderr
    assert "zk_setup_invalid" in result.stderr
    assert not (tmp_path / "s").exists()


def test_setup_needs_exactly_one_phase1_source(cap):
    assert cap("zk", "setup").code == EXIT_INPUT


def test_verify_golden_evidence_and_refusals(cap, tmp_path):
    import json

    from tests.zk import golden

    doc = golden.doc()
    evidence, commitment = tmp_path / "evidence.json", tmp_path / "commitment.json"
    evidence.write_text(json.dumps(doc["evidence"]))
    commitment.write_text(json.dumps(doc["commitment"]))
    setup = world.setup().directory
    args = (
        "zk",
        "verify",
        evidence,
        "--commitment",
        commitment,
        "--setup",
        setup,
        "--gap-root",
        doc["gap_root"],
        *[a for j in world.HIGH_RISK for a in ("--high-risk", j)],
    )

    ok = cap(*args, "--allow-dev", "--json")
    assert ok.code == 0, ok.stderr
    assert ok.json() == {"ok": True, "failures": []}

    other_set = cap(*args, "--high-risk", "IR", "--allow-dev", "--json")
    assert other_set.code == EXIT_FAIL
    assert [f["code"] for f in other_set.json()["failures"]] == ["untrusted_high_risk_set"]

    production_only = cap(*args, "--json")
    assert production_only.code == EXIT_FAIL
    assert [f["code"] for f in production_only.json()["failures"]] == ["untrusted_vk"]

    tampered = dict(doc["evidence"], count=4)
    evidence.write_text(json.dumps(tampered))
    refused = cap(*args, "--allow-dev", "--json")
    assert refused.code == EXIT_FAIL
    assert "count_mismatch" in [f["code"] for f in refused.json()["failures"]]

    evidence.write_text(json.dumps({**doc["evidence"], "batches": "nope"}))
    malformed = cap(*args, "--allow-dev")
    assert malformed.code == EXIT_INPUT
    assert "batches" in malformed.stderr and "evidence.json" in malformed.stderr
