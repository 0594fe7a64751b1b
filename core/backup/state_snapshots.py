"""Signed snapshots of the JSON state (keyring, its chain and floor, key metadata, lists) in ``state.sqlite``.

Litestream replicates ``state.sqlite`` beside the registry and the policy store, so a point-in-time restore
brings back the keyring, key metadata and lists as they were at that point, consistent with the databases.
``cap serve`` calls :func:`take_snapshot` at start and whenever those files change (checked every
``CAP_STATE_SNAPSHOT_INTERVAL_S``, default 1 s, by sizes and modification times, then digests).

A snapshot is a manifest ``cap-state-snapshot.v1`` (each file's path and SHA3-256, the keyring version)
signed with the keyring's default signer over ``"cap-state-snapshot.v1\\n" + canonical JSON``; contents are
stored once per digest (``blobs``), so an unchanged list costs nothing when the keyring changes. The files
are the archive's allowlist (:func:`core.backup.archive.select_sources`) restricted to keyring, key
metadata and lists: private ``keys/*.pem`` are never read, and each file is scanned for private-key
material (PEM private-key blocks, and the key directory's own keys raw, hex or base64) before it is written:
one match and the snapshot is refused (:class:`InvalidInputError` ``state_private_key_material``).

Reading one back (:func:`newest_snapshot`, :func:`check_snapshot_signature`, :func:`unpack_snapshot`)
trusts nothing in the replica: the signature is checked against trusted keys, every path against the same
allowlist, every blob against its digest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from core import db
from core.backup.archive import BackupSource, select_sources
from core.backup.fingerprints import KeyFingerprints
from core.backup.manifest import (
    FileType,
    SignatureStatus,
    TrustedKey,
    judge_signature,
    parse_keyring,
)
from core.backup.scan import scan_bytes_for_pem
from core.canonical import canonical_bytes
from core.documents import parse_model
from core.errors import IntegrityError, InvalidInputError, VerificationError
from core.fsio import atomic_write
from core.layout import DataLayout
from core.signing import Signer

SNAPSHOT_SCHEMA: Final = "cap-state-snapshot.v1"
STATE_DB: Final = "state.sqlite"
SNAPSHOT_TYPES: Final = frozenset({FileType.KEYRING, FileType.KEY_METADATA, FileType.LISTS})
# what a snapshot may name (checked again on the way back: the replica is not trusted)
_ALLOWED = re.compile(
    r"keyring\.json|keyring\.chain\.json|keyring\.floor\.json|keys/[A-Za-z0-9._-]+\.json"
    r"|lists/[A-Za-z0-9._/-]+"
)
COMPONENT: Final = "state_snapshots"
MIGRATIONS: Final = [
    """
    CREATE TABLE blobs (digest TEXT PRIMARY KEY, data BLOB NOT NULL);
    CREATE TABLE snapshots (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        taken_at TEXT NOT NULL,
        manifest BLOB NOT NULL,
        kid TEXT NOT NULL,
        sig TEXT NOT NULL
    );
    """,
]


class SnapshotManifest(BaseModel):
    """``cap-state-snapshot.v1``: when, the keyring version, and each file's SHA3-256 (``0x`` hex)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    schema_: Literal["cap-state-snapshot.v1"] = Field(default=SNAPSHOT_SCHEMA, alias="schema")
    taken_at: str
    keyring_version: int | None = None
    files: dict[str, str]


@dataclass(frozen=True)
class StateSnapshot:
    """One stored snapshot: its sequence number, the exact signed manifest bytes and the signature."""

    seq: int
    manifest: SnapshotManifest
    manifest_bytes: bytes
    kid: str
    sig: str


class StateSnapshots(db.SqliteStore):
    """``state.sqlite``: blobs by digest and signed snapshot manifests. Raises :class:`StorageError`."""

    component = COMPONENT
    migrations = MIGRATIONS

    def newest_files(self) -> dict[str, str] | None:
        with self._lock, db.guard(self.path):
            row = self._conn.execute("SELECT manifest FROM snapshots ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else _parse_manifest(bytes(row[0])).files

    def add(self, manifest: bytes, kid: str, sig: str, taken_at: str, blobs: dict[str, bytes]) -> int:
        with self._lock, db.transaction(self._conn, self.path):
            self._conn.executemany(
                "INSERT OR IGNORE INTO blobs (digest, data) VALUES (?, ?)", sorted(blobs.items())
            )
            cur = self._conn.execute(
                "INSERT INTO snapshots (taken_at, manifest, kid, sig) VALUES (?, ?, ?, ?)",
                (taken_at, manifest, kid, sig),
            )
            return int(cur.lastrowid or 0)


def state_db(layout: DataLayout) -> Path:
    return layout.root / STATE_DB


def state_sources(layout: DataLayout) -> list[BackupSource]:
    """The files a snapshot holds: the backup allowlist's keyring, key metadata and lists."""
    return [s for s in select_sources(layout) if s.type in SNAPSHOT_TYPES]


def state_fingerprint(layout: DataLayout) -> tuple[tuple[str, int, int, int], ...]:
    """Path, size, mtime and inode of each file: a cheap "did anything change" (no file is read)."""
    out = []
    for src in state_sources(layout):
        try:
            st = src.path.stat()
        except OSError:
            continue
        out.append((src.arcname, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)


def _digest(data: bytes) -> str:
    return "0x" + hashlib.sha3_256(data).hexdigest()


def signing_bytes(manifest_bytes: bytes) -> bytes:
    return SNAPSHOT_SCHEMA.encode() + b"\n" + manifest_bytes


def read_state(layout: DataLayout, keys: KeyFingerprints) -> dict[str, bytes]:
    """The snapshot's files and their bytes, each scanned for private-key material first.

    Raises :class:`InvalidInputError` ``state_private_key_material`` naming the file.
    """
    out = {}
    for src in state_sources(layout):
        data = src.path.read_bytes()  # read once: the bytes checked are the bytes stored
        if scan_bytes_for_pem(src.arcname, data) or keys.encoding_in(data):
            raise InvalidInputError(
                "refusing to snapshot a file holding private key material",
                code="state_private_key_material",
                file=src.arcname,
            )
        out[src.arcname] = data
    return out


def take_snapshot(layout: DataLayout, signer: Signer, now: datetime) -> int | None:
    """Store a signed snapshot of the JSON state unless it equals the newest one; its number or None.

    Raises :class:`InvalidInputError` (private key material, unreadable keyring) or :class:`StorageError`.
    """
    files = read_state(layout, KeyFingerprints.from_key_dir(layout.keys_dir))
    digests = {rel: _digest(data) for rel, data in files.items()}
    with StateSnapshots(state_db(layout)) as store:
        if store.newest_files() == digests:
            return None
        ring = files.get("keyring.json")
        manifest = SnapshotManifest(
            taken_at=db.timestamp_text(now),
            keyring_version=parse_keyring(ring).version if ring is not None else None,
            files=digests,
        )
        body = canonical_bytes(manifest.model_dump(mode="json", by_alias=True))
        sig = base64.b64encode(signer.sign(signing_bytes(body))).decode()
        blobs = {digests[rel]: data for rel, data in files.items()}
        return store.add(body, signer.kid, sig, manifest.taken_at, blobs)


# -- reading a snapshot back (from a restored, untrusted state.sqlite) ----------------------------------
def _allowed(rel: str) -> bool:
    return bool(_ALLOWED.fullmatch(rel)) and all(part not in ("", ".", "..") for part in rel.split("/"))


def _parse_manifest(data: bytes) -> SnapshotManifest:
    try:  # an untrusted restored database: the shared reader bounds nesting before parsing
        manifest = parse_model(SnapshotManifest, data, source=STATE_DB, what="state snapshot manifest")
    except InvalidInputError as exc:
        raise IntegrityError("state snapshot manifest unreadable", file=STATE_DB, found=exc.message) from exc
    bad = sorted(p for p in manifest.files if not _allowed(p))
    if bad:
        raise IntegrityError(
            "state snapshot names a file outside the allowlist", file=STATE_DB, found=bad[:5]
        )
    return manifest


def newest_snapshot(path: Path) -> StateSnapshot | None:
    """The newest snapshot in the database at ``path`` (read-only), or None when it holds none.

    Raises :class:`IntegrityError` (unreadable database or manifest, a path outside the allowlist).
    """
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT seq, manifest, kid, sig FROM snapshots ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    except sqlite3.Error as exc:
        raise IntegrityError(f"state snapshots unreadable: {exc}", file=STATE_DB) from exc
    finally:
        conn.close()
    if row is None:
        return None
    body = bytes(row[1])
    return StateSnapshot(int(row[0]), _parse_manifest(body), body, str(row[2]), str(row[3]))


def check_snapshot_signature(snap: StateSnapshot, keys: tuple[TrustedKey, ...]) -> str | None:
    """Why ``snap``'s signature is not acceptable under ``keys`` (unknown, revoked or inactive key, bad
    signature: the backup manifest's rule, :func:`~core.backup.manifest.judge_signature`), or None when it
    is."""
    data = signing_bytes(snap.manifest_bytes)
    status, problem = judge_signature(keys, snap.kid, snap.sig, data, snap.manifest.taken_at)
    if status is SignatureStatus.UNKNOWN_KID:
        return f"signed by unknown kid {snap.kid}"
    return problem


def verify_snapshot_signature(snap: StateSnapshot, keys: tuple[TrustedKey, ...]) -> None:
    """Like :func:`check_snapshot_signature`, but raises :class:`VerificationError`
    ``state_signature_invalid``."""
    problem = check_snapshot_signature(snap, keys)
    if problem is not None:
        raise VerificationError(
            f"state snapshot #{snap.seq} signature: {problem}", code="state_signature_invalid", kid=snap.kid
        )


def snapshot_keyring(path: Path, snap: StateSnapshot) -> tuple[TrustedKey, ...]:
    """The keys of the keyring inside ``snap`` (no live keyring to trust: the chain check anchors it)."""
    if "keyring.json" not in snap.manifest.files:
        return ()
    return parse_keyring(_blob(path, snap.manifest.files["keyring.json"], "keyring.json")).keys


def _blob(path: Path, digest: str, rel: str) -> bytes:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT data FROM blobs WHERE digest = ?", (digest,)).fetchone()
    except sqlite3.Error as exc:
        raise IntegrityError(f"state snapshots unreadable: {exc}", file=STATE_DB) from exc
    finally:
        conn.close()
    data = row[0] if row is not None and isinstance(row[0], bytes) else None
    if data is None or not hmac.compare_digest(_digest(data), digest):
        raise IntegrityError("state snapshot file missing or differs from its digest", file=rel)
    return data


def unpack_snapshot(path: Path, snap: StateSnapshot, dest: Path) -> list[str]:
    """Write ``snap``'s files under ``dest``, each checked against its digest; the paths written.

    Raises :class:`IntegrityError` naming the file.
    """
    for rel, digest in sorted(snap.manifest.files.items()):
        target = dest / rel
        if not target.resolve().is_relative_to(dest.resolve()):  # allowlisted already; never trusted
            raise IntegrityError("state snapshot path escapes the restore", file=rel)
        atomic_write(target, _blob(path, digest, rel))
    return sorted(snap.manifest.files)
