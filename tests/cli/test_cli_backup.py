"""``cap backup``, ``cap backups list|prune`` and ``cap restore`` as real subprocesses on a tmp data dir:
the round trip, every restore exit code (3 not found, 4 flipped byte, 5 target, 6 smoke rolled back,
2 usage) and one backup/restore over S3 (moto's HTTP server, CAP_S3_ENDPOINT_URL)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from core.backup import service as backups
from core.backup.restore import RestoreReceipt, receipt_signing_bytes
from core.backup.storage import MANIFEST_SUFFIX
from core.settings import Settings
from core.signing import verify_signature
from tests.live import moto_s3
from tests.unit.test_backup_helpers import tree_digest

POLICY = "examples/policy.lksg.v1.yml"


@pytest.fixture
def state(cap):
    """A data dir with a key, a compiled policy and one backup; returns its backup id."""
    assert cap("keys", "keygen", "--owner", "Test GmbH").code == 0
    assert cap("policy", "compile", POLICY, "-o", cap.root / "ir.json").code == 0
    made = cap("backup")
    assert made.code == 0, made.stderr
    return made.stdout.strip()


def _live(cap):
    return cap.root / "var"


def test_backup_list_verify_restore_round_trip(cap, state):
    listed = cap("backups", "list", "--json")
    assert listed.code == 0 and [b["backup_id"] for b in listed.json()] == [state]
    before = tree_digest(_live(cap))

    verified = cap("restore", "--backup", state, "--verify-only", "--json")
    assert verified.code == 0, verified.stderr
    assert [s["status"] for s in verified.json()["steps"]] == ["ok"] * 6 + ["skipped"] * 2
    assert tree_digest(_live(cap)) == before

    (_live(cap) / "policies.sqlite").write_bytes(b"damaged after the backup")
    receipt_file = cap.root / "receipt.json"
    restored = cap("restore", "--backup", state, "--receipt", receipt_file)
    assert restored.code == 0, restored.stderr
    assert "smoke" in restored.stdout
    manifest = json.loads((_live(cap) / "backups" / f"{state}{MANIFEST_SUFFIX}").read_text())
    backed_up = {f["path"]: f["sha3_256"].removeprefix("0x") for f in manifest["files"]}
    assert tree_digest(_live(cap))["policies.sqlite"] == backed_up["policies.sqlite"]
    receipt = RestoreReceipt.model_validate_json(receipt_file.read_bytes())
    keyring = json.loads((_live(cap) / "keyring.json").read_text())
    public = next(k["public_key"] for k in keyring["keys"] if k["kid"] == receipt.signature.kid)
    assert verify_signature(public, base64.b64decode(receipt.signature.sig), receipt_signing_bytes(receipt))


def test_restore_exit_codes(cap, state):
    assert cap("restore", "--backup", "backup-20990101-000000-abcdef").code == 3
    assert cap("restore", "--backup", "../etc").code == 2
    assert cap("restore").code == 2
    assert cap("backup", "--pii", "maybe").code == 2
    assert cap("backup", "--encrypt").code == 2  # no CAP_BACKUP_KEY_FILE
    not_a_dir = cap.write("file.txt", "x")
    assert cap("restore", "--backup", state, "--target", not_a_dir).code == 5

    empty = cap.root / "empty"
    empty.mkdir()
    rolled_back = cap("restore", "--backup", state, "--target", empty)
    assert rolled_back.code == 6 and "restore_smoke_failed" in rolled_back.stderr
    assert list(empty.iterdir()) == []  # the signing key is not in the backup: swapped back

    archive = next((_live(cap) / "backups").glob(f"{state}.tar.gz"))
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    before = tree_digest(_live(cap))
    flipped = cap("restore", "--backup", state, "--json")
    assert flipped.code == 4 and "[backup_" in flipped.stderr
    assert tree_digest(_live(cap)) == before


def test_prune_dry_run_then_delete(cap, state):
    for _ in range(2):  # more backups, made in-process (same service function as `cap backup`)
        backups.backup_now(Settings(data_dir=_live(cap)), now=datetime.now(UTC))
    dry = cap("backups", "prune", "--keep-last", "1", "--dry-run", "--json")
    assert dry.code == 0 and len(dry.json()["delete"]) == 2
    assert len(list((_live(cap) / "backups").glob("*" + MANIFEST_SUFFIX))) == 3
    assert cap("backups", "prune", "--keep-last", "1").code == 0
    assert len(cap("backups", "list", "--json").json()) == 1


@pytest.fixture
def s3_endpoint():
    with moto_s3() as url:
        yield url


@pytest.mark.slow
def test_backup_and_restore_over_s3(cap, s3_endpoint):
    import boto3

    aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    cap.env.update({**aws, "AWS_DEFAULT_REGION": "us-east-1", "CAP_S3_ENDPOINT_URL": s3_endpoint})
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="cap-backups")
    assert cap("keys", "keygen").code == 0
    uri = "s3://cap-backups/prod/daily"
    made = cap("backup", "--to", uri)
    assert made.code == 0, made.stderr
    bid = made.stdout.strip()
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="cap-backups")["Contents"])
    assert keys == [f"prod/daily/{bid}.manifest.json", f"prod/daily/{bid}.tar.gz"]
    assert [b["backup_id"] for b in cap("backups", "list", "--from", uri, "--json").json()] == [bid]
    assert cap("restore", "--backup", bid, "--from", uri, "--verify-only").code == 0
    before = (_live(cap) / "keyring.json").read_bytes()
    (_live(cap) / "keyring.json").write_bytes(before + b"\n")
    restored = cap("restore", "--backup", bid, "--from", uri)
    assert restored.code == 0, restored.stderr
    assert (_live(cap) / "keyring.json").read_bytes() == before

    # a missing bucket is a configuration error (exit 2), not a missing backup (exit 3)
    gone = cap("restore", "--backup", bid, "--from", "s3://no-such-bucket/prod", "--verify-only")
    assert gone.code == 2 and "[backup_store_missing]" in gone.stderr and "no-such-bucket" in gone.stderr
    missing = cap("restore", "--backup", "backup-20990101-000000-abcdef", "--from", uri, "--verify-only")
    assert missing.code == 3 and "[not_found]" in missing.stderr
