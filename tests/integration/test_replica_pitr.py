"""Continuous replication (Litestream, the real binary) and point-in-time restore through the eight steps.

Entries are written over time while ``cap serve`` (a real subprocess, API only) replicates the registry to
two buckets on moto's S3 server over HTTP (``CAP_REPLICA_URL`` and, a second region, ``CAP_REPLICA_URL_2``);
``cap serve`` and all its children are killed with SIGKILL; ``cap restore --from-replica`` (a real
subprocess) restores each to a point between two writes and to the latest point, and exactly the entries
acknowledged before each point come back. The other tests use ``file://`` replicas: a flipped byte in a
segment makes the restore fail (exit 4, ``replica_corrupt``) with the live state untouched; the keyring,
key metadata and lists come back as of the point (their signed snapshots, no private key in the replica's
bytes); replication resumes after a restore. The replica endpoint going down (lag, alert, catch-up) is
tests/integration/test_replica_faults.py's.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from core import service
from core.backup.fingerprints import KeyFingerprints
from core.backup.replica import (
    ReplicatedDb,
    litestream_config,
    parse_replica_url,
    restore_db,
)
from core.backup.restore import RestoreReceipt, receipt_signing_bytes
from core.backup.state_snapshots import newest_snapshot
from core.errors import CapError, ConfigError
from core.layout import DataLayout
from core.registry import Registry
from core.rotation import make_request
from core.settings import Settings
from core.signing import verify_signature
from core.status import observe_status
from deployments.serve import StateSnapshotter, replicators
from tests.cli.conftest import Cap
from tests.cli.test_serve import alive, descendants, start_serve, wait_ready
from tests.live import moto_s3
from tests.registry_fill import register_filler
from tests.unit.test_backup_helpers import tree_digest

POLICY = "examples/policy.lksg.v1.yml"
BUCKET, BUCKET_DR = "cap-replica", "cap-replica-dr"
SETTLE_S = 1.5  # > several 100 ms sync intervals


@pytest.fixture
def s3_endpoint():
    with moto_s3() as url:
        yield url


@pytest.fixture
def cap(tmp_path, s3_endpoint):
    cap = Cap(tmp_path)
    aws = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    cap.env.update({**aws, "CAP_S3_ENDPOINT_URL": s3_endpoint, "CAP_REPLICA_SYNC_INTERVAL": "100ms"})
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **_keys(aws))
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket=BUCKET_DR)
    cap.s3 = s3
    assert cap("keys", "keygen", "--owner", "Test GmbH").code == 0
    assert cap("policy", "compile", POLICY, "-o", tmp_path / "ir.json").code == 0
    return cap


def _keys(aws):
    return {
        "aws_access_key_id": aws["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": aws["AWS_SECRET_ACCESS_KEY"],
    }


def _settings(cap) -> Settings:
    return Settings(data_dir=cap.root / "var", subject="LEI-TEST-0001")


def _register(settings: Settings, n: int) -> str:
    with Registry(settings.layout.registry_db) as registry:
        return register_filler(registry, settings, n, subject="LEI-TEST-0001", now=datetime.now(UTC))


def _write(settings: Settings, first: int, count: int) -> list[str]:
    out = []
    for n in range(first, first + count):
        out.append(_register(settings, n))
        time.sleep(0.2)
    return out


def _entries(data_dir: Path) -> list[str]:
    return _entries_of(data_dir / "registry.sqlite")


def _entries_of(db: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute("SELECT id FROM registry_entries ORDER BY id")]
    finally:
        conn.close()


def _start_replicators(cap, url):
    """The replicating child alone, exactly as ``cap serve`` builds it."""
    (child,) = replicators(_settings(cap), {**cap.env, "CAP_REPLICA_URL": url})
    child.start(cap.env)
    return child


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    return "?"


def _kill_serve(proc) -> list[int]:
    """SIGKILL ``cap serve`` and every process under it (its children run in their own sessions)."""
    family = sorted(descendants(proc.pid))
    for pid in [proc.pid, *family]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    return family


def await_in_replica(env, config: Path, entry_id: str, timeout: float = 60.0) -> float:
    """Wait until a restore to latest from the replica of ``config`` holds ``entry_id`` (so does every entry
    acknowledged before it); returns the Unix time it was seen. A loaded machine only makes this slower."""
    db = ReplicatedDb("registry", config.parent.parent / "registry.sqlite")
    probe_dir = config.parent.parent.parent / "probe"  # beside the data dir, never in it
    out, deadline = probe_dir / "registry.sqlite", time.monotonic() + timeout
    while time.monotonic() < deadline:
        shutil.rmtree(probe_dir, ignore_errors=True)
        probe_dir.mkdir()
        with contextlib.suppress(CapError):
            restore_db(config, db, out, None, env)
            if entry_id in _entries_of(out):
                shutil.rmtree(probe_dir)
                return time.time()
        time.sleep(0.2)
    raise AssertionError(f"{entry_id} not in the replica of {config.name} after {timeout:.0f} s")


def _point_after(seen: float) -> tuple[datetime, float]:
    """A whole-second point at or after ``seen`` and when later writes may start: LTX times have one-second
    resolution, so writes from a second after the point on are unambiguously after it."""
    point = datetime.fromtimestamp(int(seen) + 1, UTC)
    return point, point.timestamp() + 1.2


def _sleep_until(when: float) -> None:
    time.sleep(max(0.0, when - time.time()))


def _iso(point: datetime) -> str:
    return point.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_pitr_between_two_writes_and_latest_after_sigkill(cap, tmp_path):
    settings = _settings(cap)
    _register(settings, -1)  # the registry exists before replication starts, as on a running server
    s3_url, dr_url = f"s3://{BUCKET}/prod", f"s3://{BUCKET_DR}/prod"  # two regions: two buckets
    extra = {k: v for k, v in cap.env.items() if k.startswith(("AWS_", "CAP_S3", "CAP_REPLICA"))}
    proc, port = start_serve(
        tmp_path,
        "--no-prefect",
        "--workers",
        "1",
        CAP_REPLICA_URL=s3_url,
        CAP_REPLICA_URL_2=dr_url,
        **extra,
    )
    try:
        wait_ready(proc, port)
        first = [_entries(settings.data_dir)[0], *_write(settings, 0, 3)]
        configs = [settings.data_dir / "run" / f"{n}.yml" for n in ("litestream", "litestream-2")]
        seen = max(await_in_replica(cap.env, c, first[-1]) for c in configs)
        point, later = _point_after(seen)
        _sleep_until(later)
        second = _write(settings, 3, 3)
        for config in configs:
            await_in_replica(cap.env, config, second[-1])
        assert proc.poll() is None, proc.stderr.read()
    finally:
        family = _kill_serve(proc)
    deadline = time.monotonic() + 10  # SIGKILL is delivered asynchronously: a loaded kernel takes a moment
    while [pid for pid in family if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = {pid: _cmdline(pid) for pid in family if alive(pid)}
    assert not survivors, survivors
    _register(settings, 99)  # acknowledged locally after the kill: in no replica

    for url in (s3_url, dr_url):
        receipt_file = tmp_path / "receipt.json"
        at = cap("restore", "--from-replica", url, "--at", _iso(point), "--receipt", receipt_file, "--json")
        assert at.code == 0, at.stderr
        assert _entries(settings.data_dir) == first, url
        receipt = RestoreReceipt.model_validate_json(receipt_file.read_bytes())
        assert receipt.replica is not None and receipt.replica.requested.startswith(_iso(point)[:19])
        assert receipt.replica.reached is not None and receipt.replica.reached <= _iso(point)
        assert [s.status for s in receipt.steps] == ["ok"] * 8
        keyring = json.loads((settings.data_dir / "keyring.json").read_text())
        public = next(k["public_key"] for k in keyring["keys"] if k["kid"] == receipt.signature.kid)
        sig = base64.b64decode(receipt.signature.sig)
        assert verify_signature(public, sig, receipt_signing_bytes(receipt))

        latest = cap("restore", "--from-replica", url, "--json")
        assert latest.code == 0, latest.stderr
        assert _entries(settings.data_dir) == first + second, url
        assert json.loads(latest.stdout)["replica"]["reached"] > _iso(point)
    for bucket in (BUCKET, BUCKET_DR):
        assert cap.s3.list_objects_v2(Bucket=bucket, Prefix="prod/registry/")["KeyCount"] > 0
        keys = {o["Key"] for o in cap.s3.list_objects_v2(Bucket=bucket)["Contents"]}
        assert not any("keys/" in k or k.endswith(".pem") for k in keys)


def await_state_in_replica(env, config: Path, seq: int, timeout: float = 60.0) -> None:
    """Wait until a restore to latest of the state snapshots holds snapshot ``seq``."""
    db = ReplicatedDb("state", config.parent.parent / "state.sqlite")
    probe_dir = config.parent.parent.parent / "probe-state"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shutil.rmtree(probe_dir, ignore_errors=True)
        probe_dir.mkdir()
        with contextlib.suppress(CapError):
            restore_db(config, db, probe_dir / "state.sqlite", None, env)
            snap = newest_snapshot(probe_dir / "state.sqlite")
            if snap is not None and snap.seq >= seq:
                shutil.rmtree(probe_dir)
                return
        time.sleep(0.2)
    raise AssertionError(f"state snapshot #{seq} not in the replica of {config.name} after {timeout:.0f} s")


def _checks(receipt: dict) -> dict[str, tuple[str, str]]:
    return {c["id"]: (c["status"], c["message"]) for s in receipt["steps"] for c in s["checks"]}


def _state(data_dir: Path) -> dict[str, bytes]:
    names = ["keyring.json", "keyring.chain.json", "lists/lists.json"]
    names += [f"keys/{p.name}" for p in sorted((data_dir / "keys").glob("*.json"))]
    return {n: (data_dir / n).read_bytes() for n in names if (data_dir / n).exists()}


def _private_key_in(fingerprints: KeyFingerprints, root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and fingerprints.encoding_in_file(p)]


def test_pitr_brings_back_keyring_key_metadata_and_lists_as_of_the_point(cap, tmp_path):
    settings = _settings(cap)
    first = _register(settings, 0)
    lists = settings.layout.lists_dir / "lists.json"
    lists.parent.mkdir(exist_ok=True)
    lists.write_text('{"sanctions": ["Kestrel Maritime Services"]}\n')
    snapshots, said = [], []
    snapshotter = StateSnapshotter(settings, said.append, interval=0.1)
    assert snapshotter.snapshot_once() == 1, said  # as `cap serve` does before Litestream starts
    then = _state(settings.data_dir)
    url = (tmp_path / "replica").as_uri()
    child = _start_replicators(cap, url)
    config = Path(child.argv[3])
    snapshotter.thread.start()  # then one per change, as in `cap serve`
    try:
        await_state_in_replica(cap.env, config, 1)
        point, later = _point_after(await_in_replica(cap.env, config, first))
        _sleep_until(later)
        request = make_request(0, force=True, actor="test")
        service.rotate_signing_key(settings, request, datetime.now(UTC))  # keyring v2, a new key
        lists.write_text('{"sanctions": []}\n')
        second = _register(settings, 1)
        deadline = time.monotonic() + 30
        while (
            (snap := newest_snapshot(settings.layout.root / "state.sqlite"))
            and _state(settings.data_dir) != _unpacked(settings, snap)
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        snapshots.append(snap.seq)
        now = _state(settings.data_dir)
        assert now["keyring.json"] != then["keyring.json"] and len(now) > len(then)  # a new key
        await_state_in_replica(cap.env, config, snap.seq)
        await_in_replica(cap.env, config, second)
    finally:
        snapshotter.stop.set()
        child.proc.send_signal(signal.SIGKILL)
        child.proc.wait()
    fingerprints = KeyFingerprints.from_key_dir(settings.layout.keys_dir)
    assert fingerprints  # both private keys: the old and the rotated-in one

    before = tree_digest(settings.data_dir)
    refused = cap("restore", "--from-replica", url, "--at", _iso(point))
    assert refused.code != 0 and "keyring_rollback" in refused.stderr, refused.stderr
    assert tree_digest(settings.data_dir) == before  # nothing swapped in

    at = cap("restore", "--from-replica", url, "--at", _iso(point), "--allow-key-rollback", "--json")
    assert at.code == 0, at.stderr
    assert _entries(settings.data_dir) == [first]
    assert _state(settings.data_dir) == then  # keyring, its chain, key metadata and lists as of the point
    checks = _checks(json.loads(at.stdout))
    assert checks["state_snapshot"][0] == "ok" and checks["state_snapshot"][1].startswith("#1 ")
    assert checks["keyring_decision"][0] == "warn" and "older than live" in checks["keyring_decision"][1]
    assert checks["keyring_signature"][0] == "ok"

    latest = cap("restore", "--from-replica", url, "--json")
    assert latest.code == 0, latest.stderr
    assert _entries(settings.data_dir) == [first, second]
    assert _state(settings.data_dir) == now
    assert _checks(json.loads(latest.stdout))["keyring"][0] == "ok"
    # no private key, in any encoding, in the replica's bytes nor in what a restore makes of them
    assert _private_key_in(fingerprints, tmp_path / "replica") == []
    assert _private_key_in(fingerprints, settings.data_dir / "state.sqlite") == []


def _unpacked(settings: Settings, snap) -> dict[str, bytes]:
    out = settings.data_dir.parent / "unpacked"
    shutil.rmtree(out, ignore_errors=True)
    from core.backup.state_snapshots import unpack_snapshot

    unpack_snapshot(settings.layout.root / "state.sqlite", snap, out)
    return _state(out)


def test_corrupted_segment_fails_clearly_and_leaves_live_untouched(cap, tmp_path):
    settings = _settings(cap)
    first = _register(settings, 0)
    url = (tmp_path / "replica").as_uri()
    child = _start_replicators(cap, url)
    config = Path(child.argv[3])
    try:
        await_in_replica(
            cap.env, config, first
        )  # the first snapshot is taken: the writes below ship as level 0
        written = _write(settings, 1, 3)
        await_in_replica(cap.env, config, written[-1])
    finally:
        child.proc.send_signal(signal.SIGKILL)
        child.proc.wait()
    segments = list((tmp_path / "replica" / "registry" / "ltx").rglob("*.ltx"))
    top = max(int(p.stem.rpartition("-")[2], 16) for p in segments)
    newest = [p for p in segments if int(p.stem.rpartition("-")[2], 16) == top]
    for segment in newest:  # every segment (any level) holding the newest transaction: latest needs one
        data = bytearray(segment.read_bytes())
        data[len(data) // 2] ^= 0x01
        segment.write_bytes(bytes(data))
    before = tree_digest(settings.data_dir)
    failed = cap("restore", "--from-replica", url)
    assert failed.code == 4, failed.stdout
    assert "replica_corrupt" in failed.stderr and "checksum" in failed.stderr
    assert tree_digest(settings.data_dir) == before
    assert not list(tmp_path.glob("var.staging-*")) and not list(tmp_path.glob(".var.restore-*"))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["--from-replica", "http://example.com/x"], "invalid replica URL", id="bad_scheme"),
        pytest.param(["--from-replica", "file:///tmp/x", "--at", "yesterday"], "--at", id="bad_point"),
        pytest.param(["--at", "2026-12-05T10:42:00Z"], "--at needs --from-replica", id="at_without_replica"),
        pytest.param(["--backup", "b1", "--from-replica", "file:///x"], "exactly one", id="both_sources"),
    ],
)
def test_bad_replica_arguments_refused_before_work(cap, args, needle):
    before = tree_digest(cap.root / "var")
    done = cap("restore", *args)
    assert done.code == 2, done.stderr
    assert needle in done.stderr
    assert tree_digest(cap.root / "var") == before


def test_replicated_paths_never_under_the_key_dir(tmp_path):
    layout = DataLayout(tmp_path)
    config = litestream_config(layout, parse_replica_url("s3://b/p"), tmp_path / "run", {})
    want = [str(layout.registry_db), str(layout.policy_db), str(layout.root / "state.sqlite")]
    assert [d["path"] for d in config["dbs"]] == want
    assert "secret" not in json.dumps(config).lower() and "access-key" not in json.dumps(config)

    class KeysHoldDatabases(DataLayout):
        @property
        def registry_db(self) -> Path:
            return self.keys_dir / "registry.sqlite"

    with pytest.raises(ConfigError, match="key directory"):
        litestream_config(KeysHoldDatabases(tmp_path), parse_replica_url("s3://b/p"), tmp_path / "run", {})


def _lag(settings: Settings) -> float:
    observed = observe_status(settings.layout, None, datetime.now(UTC))
    assert observed.replica_lag_seconds is not None
    return observed.replica_lag_seconds


def test_replication_resumes_after_a_point_in_time_restore(cap, tmp_path):
    settings = _settings(cap)
    first = _register(settings, 0)
    url = (tmp_path / "replica").as_uri()
    child = _start_replicators(cap, url)
    config = Path(child.argv[3])
    try:
        kept = _write(settings, 1, 2)
        point, later = _point_after(await_in_replica(cap.env, config, kept[-1]))
        _sleep_until(later)
        undone = _write(settings, 3, 2)  # undone by the restore below
        await_in_replica(cap.env, config, undone[-1])
    finally:
        child.proc.send_signal(signal.SIGKILL)
        child.proc.wait()
    assert cap("restore", "--from-replica", url, "--at", _iso(point)).code == 0
    assert _entries(settings.data_dir) == [first, *kept]

    child = _start_replicators(cap, url)  # cap serve started again on the restored state
    try:
        time.sleep(SETTLE_S)  # Litestream sees the restored database before the next writes
        later = _write(settings, 10, 2)
        await_in_replica(cap.env, config, later[-1])
        assert child.exited() is None
    finally:
        child.proc.send_signal(signal.SIGKILL)
        child.proc.wait()
    assert cap("restore", "--from-replica", url).code == 0
    assert _entries(settings.data_dir) == [first, *kept, *later]
