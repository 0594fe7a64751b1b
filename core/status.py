"""The operations status book of a data dir (``status.sqlite``): outcomes the state gauges report.

Whichever process does the work (API worker, flow run, CLI) records its outcome here: the last good
backup (time, size, id), the last good list refresh (time, screening keys), and the drift score of each
registry entry the verification run analysed (keyed by entry id *and* proof hash, so a reused id after a
restore never inherits an old score). :func:`observe_status` reads it at scrape time, so every process that
serves ``/metrics`` reports the same state, and none reports what a finished process left behind.

The book is not part of a backup (it describes this installation, not the data): a restore carries it over.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from core import db, rotation
from core.keyring import Keyring
from core.layout import DataLayout
from core.observed import ObservedState
from core.registry import Registry, RegistryEntry
from core.store import RegistryStore

if TYPE_CHECKING:
    from core.drift import DriftReport

COMPONENT = "status"
MIGRATIONS = [
    """
    CREATE TABLE last_success (
        operation TEXT PRIMARY KEY CHECK (operation IN ('backup', 'lists_refresh')),
        at_unix REAL NOT NULL,
        amount INTEGER NOT NULL,
        ref TEXT NOT NULL
    );
    CREATE TABLE entry_drift (
        entry_id TEXT NOT NULL,
        proof_hash TEXT NOT NULL,
        score INTEGER NOT NULL CHECK (score BETWEEN 0 AND 100),
        analysed_at_unix REAL NOT NULL,
        PRIMARY KEY (entry_id, proof_hash)
    );
    """,
]
BACKUP, LISTS_REFRESH = "backup", "lists_refresh"


@dataclass(frozen=True, slots=True)
class LastSuccess:
    at_unix: float
    amount: int
    ref: str


class StatusBook(db.SqliteStore):
    """``status.sqlite``; shareable across threads. Database failures raise :class:`StorageError`."""

    component = COMPONENT
    migrations = MIGRATIONS

    def record_success(self, operation: str, at: datetime, amount: int, ref: str) -> None:
        """The last good ``operation`` (``backup``: archive bytes; ``lists_refresh``: screening keys)."""
        with self._lock, db.transaction(self._conn, self.path):
            self._conn.execute(
                "INSERT OR REPLACE INTO last_success(operation, at_unix, amount, ref) VALUES (?, ?, ?, ?)",
                (operation, at.timestamp(), amount, ref),
            )

    def last_success(self, operation: str) -> LastSuccess | None:
        with self._lock, db.guard(self.path):
            row = self._conn.execute(
                "SELECT at_unix, amount, ref FROM last_success WHERE operation = ?", (operation,)
            ).fetchone()
        return None if row is None else LastSuccess(float(row[0]), int(row[1]), str(row[2]))

    def record_drift(self, scores: list[tuple[str, str, int]], at: datetime) -> None:
        """``(entry id, proof hash, score)`` of each analysed entry, replacing earlier analyses."""
        with self._lock, db.transaction(self._conn, self.path):
            self._conn.executemany(
                "INSERT OR REPLACE INTO entry_drift(entry_id, proof_hash, score, analysed_at_unix) "
                "VALUES (?, ?, ?, ?)",
                [(e, h, s, at.timestamp()) for e, h, s in scores],
            )

    def drift_scores(self) -> dict[tuple[str, str], int]:
        with self._lock, db.guard(self.path):
            rows = self._conn.execute("SELECT entry_id, proof_hash, score FROM entry_drift").fetchall()
        return {(str(e), str(h)): int(s) for e, h, s in rows}


def open_book(path: Path) -> StatusBook:
    """The book at ``path``, created on first use. Raises :class:`StorageError`."""
    return StatusBook(path)


def _book_if_present(path: Path) -> StatusBook | None:
    return StatusBook(path) if path.exists() else None


def observe_rotation(keyring: Keyring | None, now: datetime) -> ObservedState:
    """The rotation gauges of ``keyring`` (the live one the caller serves); nothing else known."""
    if keyring is None:
        return ObservedState()
    return ObservedState(
        rotation_phase=int(rotation.current_phase(keyring)),
        dual_accept_remaining_seconds=rotation.dual_accept_remaining(keyring, now),
    )


def _registry_heads(layout: DataLayout, registry: RegistryStore | None) -> list[tuple[str, str]] | None:
    if registry is not None:
        return registry.heads()
    if not layout.registry_db.exists():
        return None
    with Registry(layout.registry_db) as local:
        return local.heads()


def observe_status(
    layout: DataLayout, keyring: Keyring | None, now: datetime, *, registry: RegistryStore | None = None
) -> ObservedState:
    """The state gauges now: :func:`observe_rotation`, plus the status book and the registry's current
    entries. Read-only; a missing book or registry means unknown. Raises :class:`StorageError` when a
    database is unreadable. ``registry``, when given (the API's, on either engine), is read instead of the
    data dir's file."""
    backup = lists = None
    drift: int | None = None
    book = _book_if_present(layout.status_db)
    if book is not None:
        with book:
            backup, lists = book.last_success(BACKUP), book.last_success(LISTS_REFRESH)
            scores = book.drift_scores()
        heads = _registry_heads(layout, registry) if scores else None
        if heads is not None:
            drift = max((scores[h] for h in heads if h in scores), default=None)
    from core.backup.replica import worst_probe  # Litestream's probe: only for the metrics scrape

    replica = worst_probe(layout)
    return dataclasses.replace(
        observe_rotation(keyring, now),
        replica_caught_up=replica.caught_up_at if replica else None,
        replica_lag_seconds=max(0.0, now.timestamp() - replica.caught_up_at) if replica else None,
        drift_severity_max=drift,
        backup_last_success=backup.at_unix if backup else None,
        backup_size_bytes=backup.amount if backup else None,
        lists_refresh_last_success=lists.at_unix if lists else None,
        lists_keys=lists.amount if lists else None,
    )


def record_entry_drift(
    layout: DataLayout,
    entries: Sequence[RegistryEntry],
    drifts: Sequence[DriftReport | None],
    now: datetime,
) -> int:
    """Book the drift score of each analysed registry entry (0 for an entry without a baseline); returns
    how many. Raises :class:`StorageError`."""
    scores = [
        (e.id, e.proof_hash, d.score if d is not None else 0) for e, d in zip(entries, drifts, strict=True)
    ]
    if scores:
        with open_book(layout.status_db) as book:
            book.record_drift(scores, now)
    return len(scores)
