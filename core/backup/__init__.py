"""Backups of the CAP data directory: the ``create_backup`` service function and its parts.

A backup is a tar+gzip archive (optionally in the chunked AES-256-GCM container) of an allowlisted,
snapshotted, scanned set of files, plus a signed ``backup.manifest.v1`` stored beside it. Restore
lives in :mod:`core.backup.restore`, retention in :mod:`core.backup.retention`.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import secrets
import socket
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from core.backup.archive import GZIP_LEVEL, BackupSource, select_sources, snapshot_sources, write_archive
from core.backup.crypto import ChunkEncryptor, KeyWrapper, load_master_key
from core.backup.fingerprints import KeyFingerprints
from core.backup.manifest import (
    ArchiveInfo,
    BackupManifest,
    Encryption,
    FileType,
    ManifestFile,
    PgSnapshotInfo,
    SqliteInfo,
    check_backup_id,
    manifest_bytes,
    parse_keyring,
    sign_manifest,
)
from core.backup.scan import PiiMode, ScanReport, enforce, key_matches, scan_file
from core.backup.storage import ArchiveSink, BackupStore, file_errors
from core.errors import InvalidInputError
from core.layout import DataLayout
from core.signing import Signer
from core.store.url import DatabaseUrl, Engine

SYSTEM_VERSION = "0.12.0"
BACKUP_PHASES = ("snapshot", "scan", "archive", "sign")
NODE_LOCAL: frozenset[FileType] = frozenset({FileType.KEY_METADATA, FileType.CONFIGURATION})
"""What a PostgreSQL-mode backup still takes from the node's data dir (public key metadata, config)."""
"""What ``create_backup(progress=...)`` reports, in order, as each phase completes."""


class BackupResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    manifest: BackupManifest
    scan: ScanReport
    store_uri: str


def new_backup_id(now: datetime) -> str:
    """``backup-YYYYmmdd-HHMMSS-<6 hex>`` in UTC (the suffix keeps same-second backups apart)."""
    return f"backup-{now.astimezone(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def default_creator() -> str:
    """``user@host`` of the running process."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def scan_sources(sources: list[BackupSource], keys: KeyFingerprints | None = None) -> ScanReport:
    """Run the private-key and PII scanners over snapshotted sources; with ``keys``, also look for those
    private keys in any encoding in every file."""
    findings = [f for src in sources for f in scan_file(src.arcname, src.path, src.type, keys)]
    return ScanReport(files_scanned=len(sources), findings=tuple(findings))


def _with_key_matches(report: ScanReport, sources: list[BackupSource], keys: KeyFingerprints) -> ScanReport:
    """``report`` plus the files holding one of ``keys`` in any encoding (a linear pass over every file)."""
    matches = tuple(f for src in sources for f in key_matches(src.arcname, src.path, keys))
    return report.model_copy(update={"findings": matches + report.findings})


class _Emitter:
    """Archive bytes → (encrypt) → hash → sink."""

    def __init__(self, sink: ArchiveSink, encryptor: ChunkEncryptor | None) -> None:
        self.sink, self.enc = sink, encryptor
        self.digest, self.size = hashlib.sha3_256(), 0
        if encryptor is not None:
            self._out(encryptor.header())

    def _out(self, data: bytes) -> None:
        if data:
            self.digest.update(data)
            self.size += len(data)
            self.sink.write(data)

    def __call__(self, data: bytes) -> None:
        self._out(self.enc.update(data) if self.enc else data)

    def finish(self) -> ArchiveInfo:
        if self.enc is not None:
            self._out(self.enc.finish())
        return ArchiveInfo(name="", sha3_256="0x" + self.digest.hexdigest(), size_bytes=self.size)


@contextlib.contextmanager
def _staging(work_dir: Path | None) -> Iterator[Path]:
    """A private staging directory (removed afterwards); file-system failures become StorageError."""
    where = work_dir or Path(tempfile.gettempdir())
    with file_errors("staging", where):
        staging = tempfile.TemporaryDirectory(prefix="cap-backup-", dir=work_dir)
    try:
        yield Path(staging.name)
    finally:
        with contextlib.suppress(OSError):
            staging.cleanup()


def _stream_to_store(
    store: BackupStore,
    backup_id: str,
    name: str,
    sources: list[BackupSource],
    encryptor: ChunkEncryptor | None,
    mtime: int,
    level: int,
    before_commit: Callable[[], object] = lambda: None,
) -> tuple[list[ManifestFile], ArchiveInfo]:
    sink = store.open_archive(backup_id, name)
    committed = False
    try:
        emit = _Emitter(sink, encryptor)
        files = write_archive(sources, emit, mtime=mtime, level=level)
        info = emit.finish().model_copy(update={"name": name})
        before_commit()  # raises to keep the archive out of the store
        sink.commit()
        committed = True
    finally:
        if not committed:
            sink.abort()
    return files, info


def _keyring_version(sources: list[BackupSource]) -> int | None:
    ring = next((s for s in sources if s.type is FileType.KEYRING and s.arcname == "keyring.json"), None)
    return None if ring is None else parse_keyring(ring.path.read_bytes()).version


def _snapshot(
    layout: DataLayout, tmp: Path, database: DatabaseUrl | None
) -> tuple[list[BackupSource], dict[str, SqliteInfo], PgSnapshotInfo | None, int | None]:
    """Freeze what the backup holds: the data dir's files (SQLite), or the node-local files plus the
    database's tables from one snapshot (PostgreSQL; :mod:`core.store.postgres.snapshot`)."""
    sources = select_sources(layout)
    if database is None:
        if not sources:
            raise InvalidInputError("nothing to back up", file=str(layout.root))
        with file_errors("staging snapshot", tmp):
            frozen, infos = snapshot_sources(sources, tmp)
        return frozen, infos, None, _keyring_version(frozen)
    from core.store.postgres import snapshot

    with file_errors("staging snapshot", tmp):
        frozen, _ = snapshot_sources([s for s in sources if s.type in NODE_LOCAL], tmp)
        paths, info, keyring_version = snapshot.dump(database, tmp)
    tables = [BackupSource(p.relative_to(tmp).as_posix(), p, FileType.POSTGRESQL_TABLE) for p in paths]
    return frozen + tables, {}, info, keyring_version


def _with_sqlite(files: list[ManifestFile], infos: dict[str, SqliteInfo]) -> tuple[ManifestFile, ...]:
    return tuple(f.model_copy(update={"sqlite": infos.get(f.path)}) for f in files)


def create_backup(
    layout: DataLayout,
    store: BackupStore,
    signer: Signer,
    *,
    now: datetime,
    backup_id: str | None = None,
    encrypt: bool = False,
    key_wrapper: KeyWrapper | None = None,
    pii: PiiMode | str = PiiMode.REFUSE,
    created_by: str | None = None,
    system_version: str = SYSTEM_VERSION,
    level: int = GZIP_LEVEL,
    work_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    database: DatabaseUrl | None = None,
) -> BackupResult:
    """Back up ``layout`` (with ``database``: the PostgreSQL state and ``layout``'s node-local files) into
    ``store`` and return the signed manifest and scan report.

    Raises :class:`InvalidInputError` (``backup_private_key_material``, ``backup_pii_detected``,
    nothing to back up), :class:`ConflictError` for an existing id, :class:`ConfigError` for a
    missing encryption key and :class:`StorageError` from the store. Nothing is stored on failure.
    ``progress`` is called with each of :data:`BACKUP_PHASES` as it completes.
    """
    report_phase = progress or (lambda _: None)
    bid = check_backup_id(backup_id or new_backup_id(now))
    wrapper = (key_wrapper or load_master_key()) if encrypt else None
    with _staging(work_dir) as tmp:
        frozen, infos, pg_info, keyring_version = _snapshot(layout, tmp, database)
        report_phase("snapshot")
        keys, mode = KeyFingerprints.from_key_dir(layout.keys_dir), PiiMode(pii)
        report = scan_sources(frozen)  # PEM blocks, seeds, personal data: cheap, refused before any work
        if report.private or (report.pii and mode is PiiMode.REFUSE):
            enforce(_with_key_matches(report, frozen, keys), mode)  # raises; a key is named before PII
        report_phase("scan")
        encryptor = ChunkEncryptor(wrapper, bid) if wrapper else None
        name = f"{bid}.tar.gz" + (".enc" if encryptor else "")
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cap-key-search") as pool:
            # The search for the private keys in any encoding reads every file once more; it runs beside the
            # archive stream (whose gzip, hashing and encryption release the GIL) and must pass before the
            # store commits the archive, so nothing is stored if it finds one.
            searching = pool.submit(_with_key_matches, report, frozen, keys)
            files, archive = _stream_to_store(
                store,
                bid,
                name,
                frozen,
                encryptor,
                int(now.timestamp()),
                level,
                before_commit=lambda: enforce(searching.result(), mode),
            )
            report = searching.result()
        report_phase("archive")
        manifest = BackupManifest(
            created_at=now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            created_by=created_by or default_creator(),
            backup_id=bid,
            system_version=system_version,
            keyring_version=keyring_version,
            files=_with_sqlite(files, infos),
            total_files=len(files),
            total_size_bytes=sum(f.size_bytes for f in files),
            encryption=Encryption.AES_256_GCM if encryptor else Encryption.NONE,
            archive=archive,
            engine=None if pg_info is None else Engine.POSTGRESQL,
            postgresql=pg_info,
        )
    signed = sign_manifest(manifest, signer)
    try:
        store.put_manifest(bid, manifest_bytes(signed))
    except BaseException:
        store.discard_archive(archive.name)
        raise
    report_phase("sign")
    return BackupResult(manifest=signed, scan=report, store_uri=store.uri)
