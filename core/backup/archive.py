"""Backup archives: what goes in (allowlist), consistent snapshots, one-pass tar+gzip, safe extract.

Writing is one streaming pass: files are read in large blocks, hashed (SHA3-256 per file) and
scanned for PEM private-key blocks, framed as tar, and compressed as a sequence of independent gzip
members (a valid gzip stream, see RFC 1952 §2.2) by a small thread pool so compression uses every
core; the caller's ``emit`` hashes/encrypts/uploads the result. Reading verifies while it extracts:
only regular files with safe relative names listed in the manifest, each with its size and digest.
"""

from __future__ import annotations

import hashlib
import io
import os
import queue
import shutil
import sqlite3
import tarfile
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from core.backup.manifest import FileType, ManifestFile, SqliteInfo, check_relative_path
from core.backup.scan import PEM_MARKERS, PEM_OVERLAP
from core.errors import IntegrityError, InvalidInputError, StorageError
from core.layout import DataLayout

_isal: ModuleType | None
try:  # optional accelerator: same gzip format, decoded by plain zlib
    from isal import isal_zlib as _isal
except ImportError:  # pragma: no cover - depends on the environment
    _isal = None

BLOCK = 4 << 20
READ_CHUNK = 1 << 20
PAX_ALLOWANCE = 3 * 512  # header block + PAX header block + one block of PAX records
BOUND_MARGIN = 64 * 1024
GZIP_LEVEL = 1
FILE_MODE = 0o640
_END = object()


@dataclass(frozen=True, slots=True)
class BackupSource:
    """One file to back up: its path inside the archive, where it is read from, and its role."""

    arcname: str
    path: Path
    type: FileType


def _regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def select_sources(layout: DataLayout) -> list[BackupSource]:
    """The allowlist of what a backup contains. Private ``keys/*.pem`` files are never selected."""
    singles = [
        (layout.registry_db, FileType.DATABASE),
        (layout.policy_db, FileType.POLICY_STORE),
        (layout.config_file, FileType.CONFIGURATION),
        (layout.keyring, FileType.KEYRING),
        (layout.keyring_floor, FileType.KEYRING),
        (layout.keyring_chain, FileType.KEYRING),
        (layout.audit_log, FileType.AUDIT_LOG),
    ]
    out = [BackupSource(p.name, p, t) for p, t in singles if _regular(p)]
    if layout.keys_dir.is_dir():
        metas = sorted(p for p in layout.keys_dir.glob("*.json") if _regular(p))
        out += [BackupSource(f"keys/{p.name}", p, FileType.KEY_METADATA) for p in metas]
    if layout.lists_dir.is_dir():
        lists = sorted(p for p in layout.lists_dir.rglob("*") if _regular(p))
        out += [
            BackupSource("lists/" + p.relative_to(layout.lists_dir).as_posix(), p, FileType.LISTS)
            for p in lists
        ]
    return out


def sqlite_info(path: Path) -> SqliteInfo:
    """Tables, ``user_version`` and page size of a SQLite file (opened read-only)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = tuple(
            sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"))
        )
        user_version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()
    return SqliteInfo(tables=tables, user_version=user_version, page_size=page_size)


# SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_FULL (primary result codes): the copy's disk failed, not the input
_SQLITE_STORAGE_CODES = frozenset({10, 13, 14})


def snapshot_sqlite(src: Path, dst: Path) -> SqliteInfo:
    """Consistent copy of a live SQLite database via the online backup API, as one rollback-journal file.

    The copy is one step (``pages=-1``) under a read transaction, so concurrent writers on other
    connections (WAL mode) neither block it nor restart it. Raises :class:`InvalidInputError`, or
    :class:`StorageError` when the staging side fails (disk full, I/O error, cannot open).
    """
    try:
        source = sqlite3.connect(src)  # read-write handle, so closing it checkpoints and removes the WAL
        target = sqlite3.connect(dst)
        try:
            source.backup(target, pages=-1)
            target.execute("PRAGMA journal_mode=DELETE")
            target.commit()
        finally:
            target.close()
            source.close()
    except sqlite3.Error as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF in _SQLITE_STORAGE_CODES:
            raise StorageError(f"cannot snapshot SQLite database: {exc}", file=str(dst)) from exc
        raise InvalidInputError(f"cannot snapshot SQLite database: {exc}", file=src.name) from exc
    return sqlite_info(dst)


def snapshot_sources(
    sources: Iterable[BackupSource], dest: Path
) -> tuple[list[BackupSource], dict[str, SqliteInfo]]:
    """Freeze every source into ``dest``: SQLite via the backup API, other files by copy."""
    frozen, infos = [], {}
    for src in sources:
        target = dest / src.arcname
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.type in (FileType.DATABASE, FileType.POLICY_STORE):
            infos[src.arcname] = snapshot_sqlite(src.path, target)
        else:
            shutil.copyfile(src.path, target, follow_symlinks=False)
        frozen.append(BackupSource(src.arcname, target, src.type))
    return frozen, infos


def _gzip_member(data: bytes, level: int) -> bytes:
    """One complete gzip member. Module-level ``compress`` releases the GIL, so members compress in
    parallel; ISA-L (the optional ``isal`` package, levels 0-3) is ~3x faster than zlib at level 1."""
    if _isal is not None and level <= 3:
        return bytes(_isal.compress(data, level, wbits=31))
    return zlib.compress(data, level, wbits=31)


def _tar_header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, FILE_MODE, mtime
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


class _Compressor:
    """Ordered parallel gzip: blocks in, members out to ``emit`` in submission order."""

    def __init__(self, emit: Callable[[bytes], None], level: int, threads: int) -> None:
        self._emit, self._level = emit, level
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="backup-gzip")
        self._pending: deque[Future[bytes]] = deque()
        self._limit = threads * 2
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        if not self._buf and len(data) >= BLOCK:
            self._submit(data)
            return
        self._buf += data
        if len(self._buf) >= BLOCK:
            self._submit(bytes(self._buf))
            self._buf = bytearray()

    def _submit(self, block: bytes) -> None:
        self._pending.append(self._pool.submit(_gzip_member, block, self._level))
        while len(self._pending) > self._limit:
            self._emit(self._pending.popleft().result())

    def close(self) -> None:
        if self._buf:
            self._submit(bytes(self._buf))
        while self._pending:
            self._emit(self._pending.popleft().result())
        self._pool.shutdown()

    def cancel(self) -> None:
        for fut in self._pending:
            fut.cancel()
        self._pool.shutdown(wait=True)


def _stream_file(src: BackupSource, feed: Callable[[bytes], None]) -> tuple[str, int]:
    """Feed one file's bytes; return its digest and size. Refuses PEM private keys anywhere in it."""
    digest, size, tail = hashlib.sha3_256(), 0, b""
    with open(src.path, "rb", buffering=0) as fh:
        while data := fh.read(BLOCK):
            window = tail + data[: PEM_OVERLAP * 2] if tail else b""
            if any(m in data or m in window for m in PEM_MARKERS):
                raise InvalidInputError(
                    "private key material found", code="backup_private_key_material", file=src.arcname
                )
            digest.update(data)
            size += len(data)
            tail = data[-PEM_OVERLAP:]
            feed(data)
    return "0x" + digest.hexdigest(), size


def write_archive(
    sources: Iterable[BackupSource],
    emit: Callable[[bytes], None],
    *,
    mtime: int = 0,
    level: int = GZIP_LEVEL,
    threads: int | None = None,
) -> list[ManifestFile]:
    """Write ``sources`` as tar+gzip to ``emit`` in one pass; returns the manifest file entries.

    Raises :class:`InvalidInputError` if a file contains a PEM private key or changes size while read.
    """
    comp = _Compressor(emit, level, threads or max(2, os.cpu_count() or 2))
    entries, finished = [], False
    try:
        for src in sources:
            size = src.path.stat().st_size
            comp.feed(_tar_header(src.arcname, size, mtime))
            digest, read = _stream_file(src, comp.feed)
            if read != size:
                raise InvalidInputError("file changed while being archived", file=src.arcname)
            comp.feed(b"\0" * (-size % tarfile.BLOCKSIZE))
            entries.append(ManifestFile(path=src.arcname, sha3_256=digest, size_bytes=size, type=src.type))
        comp.feed(b"\0" * (2 * tarfile.BLOCKSIZE))
        comp.close()
        finished = True
    finally:
        if not finished:
            comp.cancel()
    return entries


def tar_size_bound(files: Iterable[ManifestFile]) -> int:
    """The most bytes a tar of ``files`` as :func:`write_archive` writes it can take, plus a margin.

    Per file: its data rounded up to a block, a header block and a PAX header (long or non-ASCII names);
    then the end-of-archive blocks, a tar record of padding and 64 KiB to spare. A decompression bomb stops
    here however its manifest was made.
    """
    per_file = sum(-(-f.size_bytes // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE + PAX_ALLOWANCE for f in files)
    return per_file + 2 * tarfile.BLOCKSIZE + tarfile.RECORDSIZE + BOUND_MARGIN


def iter_gunzip(
    chunks: Iterable[bytes], *, max_out: int = BLOCK, max_total: int | None = None
) -> Iterator[bytes]:
    """Decompress a (multi-member) gzip stream in bounded pieces, at most ``max_total`` bytes in all.

    Raises :class:`IntegrityError` on corrupt data, a truncated member, an empty stream, or
    (``backup_too_large``) output beyond ``max_total``.
    """
    dec, started, members, total = zlib.decompressobj(31), False, 0, 0
    try:
        for chunk in chunks:
            data = chunk
            while data or started:
                started = True
                out = dec.decompress(data, max_out)
                total += len(out)
                if max_total is not None and total > max_total:
                    raise IntegrityError(
                        "archive decompresses beyond the size its manifest declares",
                        code="backup_too_large",
                        limit=max_total,
                    )
                if out:
                    yield out
                data = dec.unconsumed_tail
                if dec.eof:
                    members += 1
                    data, dec, started = dec.unused_data, zlib.decompressobj(31), False
                elif not data and len(out) < max_out:
                    break
    except zlib.error as exc:
        raise IntegrityError(f"compressed archive is corrupt: {exc}", code="backup_corrupt") from exc
    if started or members == 0:
        raise IntegrityError("compressed archive is truncated", code="backup_truncated")


class _QueueReader(io.RawIOBase):
    """A readable stream over chunks produced by a background thread (errors re-raised here)."""

    def __init__(self, produce: Callable[[], Iterator[bytes]], depth: int = 8) -> None:
        self._q: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._buf = memoryview(b"")
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(produce,), name="restore-read", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self, produce: Callable[[], Iterator[bytes]]) -> None:
        try:
            for chunk in produce():
                if self._stop.is_set():
                    return
                self._put(chunk)
            self._put(_END)
        except BaseException as exc:  # handed to the reading thread, which re-raises it
            self._put(exc)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf and not self._done:
            item = self._q.get()
            if item is _END:
                self._done = True
            elif isinstance(item, BaseException):
                self._done = True
                raise item
            else:
                self._buf = memoryview(item)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def drain(self) -> None:
        """Consume to the end so producer-side checks (digest, truncation) are surfaced."""
        while self.readinto(bytearray(READ_CHUNK)):
            pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        super().close()


def _check_member(
    member: tarfile.TarInfo, expected: Mapping[str, ManifestFile], seen: set[str]
) -> ManifestFile:
    if not member.isreg():
        raise IntegrityError(
            "archive member is not a regular file", code="backup_unsafe_member", file=member.name
        )
    try:
        check_relative_path(member.name)
    except InvalidInputError as exc:
        raise IntegrityError(
            "archive member has an unsafe path", code="backup_unsafe_member", file=member.name
        ) from exc
    entry = expected.get(member.name)
    if entry is None or member.name in seen:
        raise IntegrityError(
            "archive member not in manifest (or repeated)", code="backup_extra_file", file=member.name
        )
    if member.size != entry.size_bytes:
        raise IntegrityError("archive member size differs from manifest", file=member.name)
    seen.add(member.name)
    return entry


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, entry: ManifestFile, dest: Path) -> None:
    target = dest.joinpath(*member.name.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    src = tar.extractfile(member)
    if src is None:
        raise IntegrityError("archive member unreadable", file=member.name)
    digest = hashlib.sha3_256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    with os.fdopen(fd, "wb", buffering=0) as out:
        while data := src.read(BLOCK):
            digest.update(data)
            out.write(data)
    if "0x" + digest.hexdigest() != entry.sha3_256:
        raise IntegrityError(
            "file digest differs from manifest", code="backup_digest_mismatch", file=member.name
        )


def extract_archive(stream: io.RawIOBase, dest: Path, files: Iterable[ManifestFile]) -> None:
    """Safely extract a plain tar ``stream`` into the empty directory ``dest`` and verify every file.

    Refuses absolute or ``..`` paths, links, devices, directories and anything not in ``files``;
    checks size and SHA3-256 of each file and that none is missing. Raises :class:`IntegrityError`.
    """
    expected = {f.path: f for f in files}
    seen: set[str] = set()
    try:
        with tarfile.open(fileobj=stream, mode="r|", bufsize=READ_CHUNK) as tar:
            for member in tar:
                _write_member(tar, member, _check_member(member, expected, seen), dest)
    except tarfile.TarError as exc:
        raise IntegrityError(f"archive is not a valid tar stream: {exc}", code="backup_corrupt") from exc
    missing = sorted(set(expected) - seen)
    if missing:
        raise IntegrityError(
            "files listed in the manifest are missing", code="backup_missing_file", file=missing[0]
        )


def read_stream(produce: Callable[[], Iterator[bytes]]) -> _QueueReader:
    """A background-thread reader over ``produce()`` (decrypt/decompress overlap with extraction)."""
    return _QueueReader(produce)
