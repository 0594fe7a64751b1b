"""The hash-chained audit log v1 on PostgreSQL: the same events, digests and line bytes as the JSONL file.

Each event is one row ``(seq, line)`` holding the exact canonical line bytes the file would hold, so
:func:`core.audit.check_line` verifies both alike. An append takes the transaction-scoped advisory lock
:data:`CHAIN_LOCK`, reads the last row, checks it (parses, and its ``seq`` is its row's), and inserts the next
event in the same transaction: appends from any number of processes and nodes form ONE chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError

from core.audit import GENESIS, AuditEvent, ChainReport, check_line, make_event
from core.canonical import canonical_bytes
from core.db import timestamp_text
from core.errors import IntegrityError
from core.store.postgres.db import database
from core.store.url import DatabaseUrl

COMPONENT: Final = "audit"
CHAIN_LOCK: Final = 0x0CA9_0003
"""``pg_advisory_xact_lock`` key serialising appends to the one chain."""

MIGRATIONS: Final = [
    """
    CREATE TABLE audit_events (
        seq BIGINT PRIMARY KEY CHECK (seq >= 1),
        line BYTEA NOT NULL
    );
    """,
]


class PgAuditLog:
    """The audit log in a PostgreSQL database. Database failures raise :class:`StorageError`."""

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self._db = database(url)
        self._db.ensure(COMPONENT, MIGRATIONS)

    def append(self, event: str, details: dict[str, Any], now: datetime) -> AuditEvent:
        """Append one event continuing the chain; returns it.

        Raises :class:`InvalidInputError` for non-canonicalisable details and :class:`IntegrityError` when the
        last stored event is unreadable or not where its ``seq`` says.
        """
        ts = timestamp_text(now)
        canonical_bytes(details)  # refuse bad details before taking the lock
        with self._db.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK,))
            row = conn.execute("SELECT seq, line FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
            last = None if row is None else _stored(int(row[0]), bytes(row[1]), self.url)
            seq, prev = (last.seq + 1, last.digest) if last else (1, GENESIS)
            entry = make_event(seq, ts, event, details, prev)
            conn.execute("INSERT INTO audit_events(seq, line) VALUES (%s, %s)", (entry.seq, entry.line()))
        return entry

    def tail(self) -> tuple[str, int]:
        """``(digest, count)`` of the last event; ``(GENESIS, 0)`` for an empty log."""
        with self._db.transaction() as conn:
            row = conn.execute("SELECT seq, line FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            return GENESIS, 0
        last = _stored(int(row[0]), bytes(row[1]), self.url)
        return last.digest, last.seq

    def events(self) -> Iterator[AuditEvent]:
        """Every event, parsed but not checked (use :meth:`verify` for that)."""
        for index, line in enumerate(self._lines()):
            yield _stored(index + 1, line, self.url)

    def verify(self) -> ChainReport:
        """Walk the chain from genesis; the first failing event gives ``tamper_index`` and ``error``."""
        lines = self._lines()
        prev = GENESIS
        for index, line in enumerate(lines):
            try:
                prev = check_line(index, line, prev).digest
            except IntegrityError as exc:
                return ChainReport(total=len(lines), ok=False, tamper_index=index, error=exc.message)
        return ChainReport(total=len(lines), ok=True)

    def _lines(self) -> list[bytes]:
        with self._db.transaction() as conn:
            return [bytes(r[0]) for r in conn.execute("SELECT line FROM audit_events ORDER BY seq")]


def _stored(seq: int, line: bytes, url: DatabaseUrl) -> AuditEvent:
    try:
        found = AuditEvent.model_validate_json(line)
    except ValidationError as exc:
        raise IntegrityError(
            f"audit event {seq} in {url.redacted} is not an audit v1 event", database=url.redacted, line=seq
        ) from exc
    if found.seq != seq:
        raise IntegrityError(
            f"audit event stored as {seq} in {url.redacted} says seq {found.seq}",
            database=url.redacted,
            line=seq,
        )
    return found
