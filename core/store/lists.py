"""Where the installed (trusted) sanctions lists live, on either engine: ``<data>/lists/lists.json`` or the
``installed_lists`` table, whose rows are content-addressed (SHA3-256 of the exact bytes) with the newest in
force. On PostgreSQL no request reads a node's local lists: every replica polls the newest row's number at
most every :data:`POLL_S` seconds and reloads when it moved.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Final, Protocol

from core.digest import sha3_prefixed
from core.fsio import atomic_write
from core.screening import ListsFile, parse_lists_bytes
from core.store.url import DatabaseUrl

POLL_S: Final = 1.0
Stamp = tuple[int, ...]


class ListsStore(Protocol):
    """The installed lists' bytes on either engine."""

    @property
    def name(self) -> str: ...
    def stamp(self) -> Stamp | None: ...
    def read(self) -> bytes | None: ...
    def write(self, data: bytes) -> None: ...


class FileListsStore:
    """``<data>/lists/lists.json``; the stamp is the file's (mtime_ns, size, inode)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def name(self) -> str:
        return str(self.path)

    def stamp(self) -> Stamp | None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    def read(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def write(self, data: bytes) -> None:
        atomic_write(self.path, data)


class PgListsStore:
    """The ``installed_lists`` table; the stamp is the newest row number, polled at most every ``POLL_S``."""

    MIGRATIONS: Final = [
        """
        CREATE TABLE installed_lists (
            number BIGSERIAL PRIMARY KEY,
            sha3_256 TEXT NOT NULL,
            document BYTEA NOT NULL
        );
        """,
    ]

    def __init__(self, url: DatabaseUrl, *, poll_seconds: float = POLL_S) -> None:
        from core.store.postgres.db import database

        self.url = url
        self._db = database(url)
        self._db.ensure("lists", self.MIGRATIONS)
        self._poll = poll_seconds
        self._lock = threading.Lock()
        self._polled: tuple[float, Stamp | None] | None = None

    @property
    def name(self) -> str:
        return f"{self.url.redacted} (installed_lists)"

    def stamp(self) -> Stamp | None:
        with self._lock:
            now = time.monotonic()
            if self._polled is None or now - self._polled[0] >= self._poll:
                with self._db.transaction() as conn:
                    row = conn.execute("SELECT MAX(number) FROM installed_lists").fetchone()
                self._polled = (now, None if row is None or row[0] is None else (int(row[0]),))
            return self._polled[1]

    def read(self) -> bytes | None:
        with self._db.transaction() as conn:
            row = conn.execute("SELECT document FROM installed_lists ORDER BY number DESC LIMIT 1").fetchone()
        return None if row is None else bytes(row[0])

    def write(self, data: bytes) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO installed_lists(sha3_256, document) VALUES (%s, %s)", (sha3_prefixed(data), data)
            )
        with self._lock:
            self._polled = None


def load_installed(store: ListsStore) -> ListsFile | None:
    """The installed lists, checked; None when none are installed. Raises InvalidInput/IntegrityError."""
    data = store.read()
    return None if data is None else parse_lists_bytes(data, store.name)
