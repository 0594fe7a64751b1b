"""The hash-chained audit log, v1 (original §3.7, byte compatible).

One compact JSON object per line, fields in order ``seq`` (1-based), ``ts``, ``event``,
``details`` (sorted keys), ``prev_digest``, ``digest``. ``digest`` = ``0x`` + SHA3-256 over the
byte concatenation of decimal ``seq``, ``ts``, ``event``, compact sorted-key ``details`` and
``prev_digest``; the first line's ``prev_digest`` is ``0x`` + 64 zeros.

:class:`AuditLog` appends with ``O_APPEND`` + ``fsync`` under an exclusive ``flock``, reading the
last line under the same lock, so several processes can share one log.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from core.canonical import canonical_bytes
from core.db import timestamp_text
from core.digest import digests_equal, sha3_hex
from core.errors import IntegrityError, InvalidInputError, StorageError

GENESIS = "0x" + "0" * 64
_TAIL_CHUNK = 4096


class AuditEvent(BaseModel):
    """One line of the log, fields in wire order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    ts: str
    event: str
    details: dict[str, Any]
    prev_digest: str
    digest: str

    def line(self) -> bytes:
        """The exact line bytes, without the newline."""
        return canonical_bytes(self)


class ChainReport(BaseModel):
    """Result of walking the chain: ``tamper_index`` is the 0-based line of the first failure."""

    model_config = ConfigDict(frozen=True)

    total: int
    ok: bool
    tamper_index: int | None = None
    error: str | None = None


def event_digest(seq: int, ts: str, event: str, details: dict[str, Any], prev_digest: str) -> str:
    """``0x`` + SHA3-256 of ``seq ‖ ts ‖ event ‖ details ‖ prev_digest`` (no separators).

    Raises :class:`InvalidInputError` when ``details`` holds floats or non-string keys.
    """
    data = str(seq).encode() + ts.encode() + event.encode() + canonical_bytes(details) + prev_digest.encode()
    return sha3_hex(data)


def make_event(seq: int, ts: str, event: str, details: dict[str, Any], prev_digest: str) -> AuditEvent:
    """A complete event with its digest."""
    digest = event_digest(seq, ts, event, details, prev_digest)
    return AuditEvent(seq=seq, ts=ts, event=event, details=details, prev_digest=prev_digest, digest=digest)


def check_line(index: int, line: bytes, prev_digest: str) -> AuditEvent:
    """Parse and check line ``index`` (0-based) against the previous digest.

    Raises :class:`IntegrityError` naming what is wrong.
    """
    try:
        found = AuditEvent.model_validate_json(line)
    except ValidationError as exc:
        raise IntegrityError(f"line {index + 1} is not an audit v1 event", line=index + 1) from exc
    if found.seq != index + 1:
        raise IntegrityError(f"line {index + 1} has seq {found.seq}, expected {index + 1}", line=index + 1)
    if not digests_equal(found.prev_digest, prev_digest):
        raise IntegrityError(
            f"hash chain broken at line {index + 1}: prev_digest does not match", line=index + 1
        )
    try:
        expected = make_event(found.seq, found.ts, found.event, found.details, found.prev_digest)
    except InvalidInputError as exc:
        raise IntegrityError(f"line {index + 1} details cannot be canonicalised", line=index + 1) from exc
    if not digests_equal(expected.digest, found.digest):
        raise IntegrityError(f"digest mismatch at line {index + 1}", line=index + 1)
    if expected.line() != line:
        raise IntegrityError(f"line {index + 1} is not in canonical form", line=index + 1)
    return found


class AuditLog:
    """An append-only v1 audit log file. I/O failures raise :class:`StorageError`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, event: str, details: dict[str, Any], now: datetime) -> AuditEvent:
        """Append one event continuing the chain; returns it.

        Raises :class:`InvalidInputError` for non-canonicalisable details and :class:`IntegrityError`
        when the log's last line is torn or unreadable.
        """
        ts = timestamp_text(now)
        canonical_bytes(details)  # refuse bad details before taking the lock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked(os.O_RDWR | os.O_APPEND | os.O_CREAT) as fd:
            last = _last_event(fd, self.path)
            seq, prev = (last.seq + 1, last.digest) if last else (1, GENESIS)
            entry = make_event(seq, ts, event, details, prev)
            _write_all(fd, entry.line() + b"\n", self.path)
        return entry

    def tail(self) -> tuple[str, int]:
        """``(digest, count)`` of the last event; ``(GENESIS, 0)`` for a missing or empty log."""
        if not self.path.exists():
            return GENESIS, 0
        with self._locked(os.O_RDONLY, shared=True) as fd:
            last = _last_event(fd, self.path)
        return (last.digest, last.seq) if last else (GENESIS, 0)

    def events(self) -> Iterator[AuditEvent]:
        """Every event, parsed but not checked (use :meth:`verify` for that)."""
        for index, line in enumerate(self._lines()):
            yield _parse(line, index, self.path)

    def verify(self) -> ChainReport:
        """Walk the chain from genesis; the first failing line gives ``tamper_index`` and ``error``."""
        lines = self._lines()
        prev = GENESIS
        for index, line in enumerate(lines):
            try:
                prev = check_line(index, line, prev).digest
            except IntegrityError as exc:
                return ChainReport(total=len(lines), ok=False, tamper_index=index, error=exc.message)
        return ChainReport(total=len(lines), ok=True)

    # -------------------------------------------------------------- internals

    def _lines(self) -> list[bytes]:
        if not self.path.exists():
            return []
        with self._locked(os.O_RDONLY, shared=True) as fd:
            data = _read_all(fd, self.path)
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        return lines

    @contextmanager
    def _locked(self, flags: int, *, shared: bool = False) -> Iterator[int]:
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise StorageError(
                f"cannot open audit log {self.path}: {exc.strerror}", file=str(self.path)
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # closing releases the lock


def _parse(line: bytes, index: int, path: Path) -> AuditEvent:
    try:
        return AuditEvent.model_validate_json(line)
    except ValidationError as exc:
        raise IntegrityError(
            f"audit log line {index + 1} is not an audit v1 event", file=str(path), line=index + 1
        ) from exc


def _last_event(fd: int, path: Path) -> AuditEvent | None:
    """The last complete line of the file, parsed; None for an empty file."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    tail = b""
    offset = size
    while offset > 0 and tail.count(b"\n") < 2:
        step = min(_TAIL_CHUNK, offset)
        offset -= step
        tail = os.pread(fd, step, offset) + tail
    if not tail.endswith(b"\n"):
        raise IntegrityError(
            f"audit log {path} ends in a partial line",
            file=str(path),
            expected="a newline-terminated last line",
        )
    last = tail[:-1].rsplit(b"\n", 1)[-1]
    try:
        return AuditEvent.model_validate_json(last)
    except ValidationError as exc:
        raise IntegrityError(
            f"last line of audit log {path} is not an audit v1 event", file=str(path)
        ) from exc


def _write_all(fd: int, data: bytes, path: Path) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError as exc:
        raise StorageError(f"cannot append to audit log {path}: {exc.strerror}", file=str(path)) from exc


def _read_all(fd: int, path: Path) -> bytes:
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    except OSError as exc:
        raise StorageError(f"cannot read audit log {path}: {exc.strerror}", file=str(path)) from exc
    return b"".join(chunks)
