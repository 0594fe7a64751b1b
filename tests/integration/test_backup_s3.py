"""Backups on S3: moto's HTTP server (real HTTP, real botocore) and in-process ``mock_aws``.

Faults are injected with botocore ``before-send`` event hooks: 500, SlowDown, connection resets and
a persistent failure in the middle of a multipart upload.
"""

from __future__ import annotations

import os

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError
from moto import mock_aws

from core.backup import create_backup
from core.backup.crypto import KmsKeyWrapper
from core.backup.restore import RestoreOptions, run_restore
from core.backup.retention import KeepRules, apply_retention
from core.backup.storage import S3Store, open_store
from core.errors import ConflictError, StorageError
from core.layout import DataLayout
from tests.live import moto_s3
from tests.unit.test_backup_helpers import MASTER, NOW, SIGNER, make_state, tree_digest

PART = 5 << 20
BUCKET = "cap-backups"


@pytest.fixture(scope="module")
def endpoint():
    with moto_s3() as url:
        yield url


@pytest.fixture
def client(endpoint, monkeypatch, request):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    cfg = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
    s3 = boto3.client("s3", endpoint_url=endpoint, config=cfg)
    bucket = f"{BUCKET}-{abs(hash(request.node.name)) % 10**8}"
    s3.create_bucket(Bucket=bucket)
    s3.bucket = bucket
    return s3


def _store(client, prefix="prod/daily"):
    return S3Store(client, client.bucket, prefix, part_size=PART, base_delay=0.01)


def _big_state(tmp_path):
    live = make_state(tmp_path / "var")
    (live / "lists" / "blob.bin").write_bytes(os.urandom(12 << 20))  # incompressible: 3 parts
    return live


def _objects(client, prefix=""):
    return sorted(
        o["Key"] for o in client.list_objects_v2(Bucket=client.bucket, Prefix=prefix).get("Contents", [])
    )


def _uploads(client):
    return client.list_multipart_uploads(Bucket=client.bucket).get("Uploads", [])


@pytest.mark.parametrize("encrypt", [False, True], ids=["plain", "encrypted"])
def test_round_trip_over_http(tmp_path, client, encrypt):
    live = _big_state(tmp_path)
    before = tree_digest(live)
    store = _store(client)
    result = create_backup(
        DataLayout(live), store, SIGNER, now=NOW, encrypt=encrypt, key_wrapper=MASTER, created_by="t@h"
    )
    bid = result.manifest.backup_id
    assert _objects(client) == sorted(
        [f"prod/daily/{result.manifest.archive.name}", f"prod/daily/{bid}.manifest.json"]
    )
    head = client.head_object(Bucket=client.bucket, Key=f"prod/daily/{result.manifest.archive.name}")
    assert "-3" in head["ETag"]  # three multipart parts
    (live / "lists" / "blob.bin").write_bytes(b"damaged")
    run_restore(store, bid, live, SIGNER, now=NOW, options=RestoreOptions(key_wrapper=MASTER))
    after = tree_digest(live)
    assert after["lists/blob.bin"] == before["lists/blob.bin"]
    assert [b.backup_id for b in store.list_backups()] == [bid]


def _fault(kind):
    def respond(request, **kwargs):
        if kind == "reset":
            raise ConnectionClosedError(endpoint_url=request.url)
        status, code = (500, "InternalError") if kind == "500" else (503, "SlowDown")
        body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()

        class Raw:
            def stream(self, **_):
                yield body

        return AWSResponse(request.url, status, {"Content-Type": "application/xml"}, Raw())

    return respond


def _inject(client, operation, kind, times=None, skip=0):
    calls = {"n": 0}
    respond = _fault(kind)

    def handler(request, **kwargs):
        calls["n"] += 1
        if calls["n"] > skip and (times is None or calls["n"] <= skip + times):
            return respond(request)
        return None

    client.meta.events.register(f"before-send.s3.{operation}", handler)
    return calls


@pytest.mark.parametrize("kind", ["500", "slowdown", "reset"])
@pytest.mark.parametrize(
    "operation", ["UploadPart", "CompleteMultipartUpload", "PutObject", "CreateMultipartUpload"]
)
def test_transient_faults_are_retried(tmp_path, client, kind, operation):
    live = _big_state(tmp_path)
    calls = _inject(client, operation, kind, times=2, skip=1 if operation == "UploadPart" else 0)
    result = create_backup(DataLayout(live), _store(client), SIGNER, now=NOW, created_by="t@h")
    assert calls["n"] >= 3
    assert len(_objects(client)) == 2 and _uploads(client) == []
    run_restore(
        _store(client),
        result.manifest.backup_id,
        live,
        SIGNER,
        now=NOW,
        options=RestoreOptions(verify_only=True),
    )


@pytest.mark.parametrize("kind", ["500", "reset"])
def test_persistent_failure_mid_multipart_leaves_nothing(tmp_path, client, kind):
    live = _big_state(tmp_path)
    _inject(client, "UploadPart", kind, skip=1)  # first part succeeds, then every attempt fails
    with pytest.raises(StorageError) as err:
        create_backup(DataLayout(live), _store(client), SIGNER, now=NOW, created_by="t@h")
    assert err.value.transient
    assert _uploads(client) == []
    assert _objects(client) == []


def test_non_transient_error_is_not_retried(tmp_path, client):
    live = make_state(tmp_path / "var")
    calls = {"n": 0}

    def deny(request, **kwargs):
        calls["n"] += 1
        body = b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>"

        class Raw:
            def stream(self, **_):
                yield body

        return AWSResponse(request.url, 403, {}, Raw())

    client.meta.events.register("before-send.s3.CreateMultipartUpload", deny)
    with pytest.raises(StorageError) as err:
        create_backup(DataLayout(live), _store(client), SIGNER, now=NOW, created_by="t@h")
    assert not err.value.transient and calls["n"] == 1


def test_never_overwrites(tmp_path, client):
    live = make_state(tmp_path / "var")
    store = _store(client)
    create_backup(DataLayout(live), store, SIGNER, now=NOW, backup_id="backup-x", created_by="t@h")
    with pytest.raises(ConflictError):
        create_backup(DataLayout(live), store, SIGNER, now=NOW, backup_id="backup-x", created_by="t@h")
    with pytest.raises(ConflictError):  # the conditional write refuses even when the pre-check is skipped
        store.put_manifest("backup-x", b"{}")
    assert _uploads(client) == []


def test_open_store_uses_endpoint_env(endpoint, monkeypatch, client):
    monkeypatch.setenv("CAP_S3_ENDPOINT_URL", endpoint)
    store = open_store(f"s3://{client.bucket}/p")
    assert isinstance(store, S3Store) and store.list_backups() == []


def test_in_process_mock_aws_with_kms_and_retention(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.delenv("CAP_S3_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-central-1")
        s3.create_bucket(Bucket="cap-b", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        kms = boto3.client("kms", region_name="eu-central-1")
        wrapper = KmsKeyWrapper(kms, kms.create_key()["KeyMetadata"]["KeyId"])
        store = open_store("s3://cap-b/cap", client=s3)
        live = make_state(tmp_path / "var")
        from datetime import timedelta

        ids = [
            create_backup(
                DataLayout(live),
                store,
                SIGNER,
                now=NOW + timedelta(days=d),
                encrypt=True,
                key_wrapper=wrapper,
                created_by="t@h",
            ).manifest.backup_id
            for d in range(3)
        ]
        run_restore(store, ids[-1], live, SIGNER, now=NOW, options=RestoreOptions(key_wrapper=wrapper))
        plan = apply_retention(store, KeepRules(keep_last=1), dry_run=False)
        assert set(plan.delete) == set(ids[:2])
        assert [b.backup_id for b in store.list_backups()] == [ids[-1]]
        assert len(s3.list_objects_v2(Bucket="cap-b")["Contents"]) == 2
