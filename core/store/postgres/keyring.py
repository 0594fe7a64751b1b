"""The keyring on PostgreSQL: every version's exact bytes, the signature chain's links and the rollback floor.

``keyring_versions`` holds each version's bytes as the file would hold them (what a link's digest covers), so
the history stays readable; the head is the highest version. ``keyring_links`` holds one signed link per
version, ``keyring_floor`` the highest version ever stored (a restore is not supported on PostgreSQL yet, so
it only rises). A write takes the advisory lock :data:`KEYRING_LOCK` and, in one transaction, compares the
head with the writer's expectation (:func:`core.store.keyring.stale` otherwise), inserts link and version
and raises the floor: two nodes rotating at once cannot both win.

Readers (:class:`core.keyring.KeyringWatcher` on every API replica) poll the head version at most every
:data:`POLL_S` seconds, so a change is in force everywhere within that bound plus one request.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Final

import psycopg

from core.canonical import canonical_bytes
from core.documents import parse_model
from core.errors import NotFoundError
from core.keyring import FileStamp, Keyring, keyring_file_bytes, validate_keyring
from core.keyring_chain import ChainLink, KeyringChain
from core.store.keyring import stale
from core.store.postgres.db import database
from core.store.url import DatabaseUrl

COMPONENT: Final = "keyring"
KEYRING_LOCK: Final = 0x0CA9_0004
POLL_S: Final = 1.0
"""How long a replica may serve a keyring version after a newer one was committed (plus one request)."""

MIGRATIONS: Final = [
    """
    CREATE TABLE keyring_versions (
        version INTEGER PRIMARY KEY CHECK (version >= 1),
        document BYTEA NOT NULL
    );
    CREATE TABLE keyring_links (
        version INTEGER PRIMARY KEY CHECK (version >= 1),
        link BYTEA NOT NULL
    );
    CREATE TABLE keyring_floor (
        id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
        version INTEGER NOT NULL CHECK (version >= 1)
    );
    """,
]

Conn = psycopg.Connection[tuple[Any, ...]]


class PgKeyringStore:
    """The keyring in a PostgreSQL database. Failures raise :class:`StorageError`."""

    def __init__(self, url: DatabaseUrl, *, poll_seconds: float = POLL_S) -> None:
        self.url = url
        self._db = database(url)
        self._db.ensure(COMPONENT, MIGRATIONS)
        self._poll = poll_seconds
        self._lock = threading.Lock()
        self._polled: tuple[float, FileStamp | None] | None = None

    @property
    def name(self) -> str:
        return f"{self.url.redacted} (keyring_versions)"

    def exists(self) -> bool:
        return self._head() is not None

    def stamp(self) -> FileStamp | None:
        """``(head version,)``, polled at most every :data:`POLL_S` seconds; None while none is stored."""
        with self._lock:
            now = time.monotonic()
            if self._polled is None or now - self._polled[0] >= self._poll:
                head = self._head()
                self._polled = (now, None if head is None else (head,))
            return self._polled[1]

    def read(self) -> tuple[bytes, FileStamp]:
        """The head version's bytes. Raises NotFoundError ``keyring_not_found``."""
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT version, document FROM keyring_versions ORDER BY version DESC LIMIT 1"
            ).fetchone()
        if row is None:
            raise NotFoundError("no keyring stored", code="keyring_not_found", file=self.name)
        return bytes(row[1]), (int(row[0]),)

    def floor(self) -> int | None:
        with self._db.transaction() as conn:
            row = conn.execute("SELECT version FROM keyring_floor").fetchone()
        return None if row is None else int(row[0])

    def chain(self) -> KeyringChain | None:
        """The links, oldest first; None while no link is stored (an unsigned keyring)."""
        with self._db.transaction() as conn:
            rows = conn.execute("SELECT link FROM keyring_links ORDER BY version").fetchall()
        if not rows:
            return None
        links = tuple(
            parse_model(
                ChainLink, bytes(r[0]), source=self.name, what="keyring link", expected="a chain link"
            )
            for r in rows
        )
        return KeyringChain(links=links)

    def history(self) -> list[int]:
        """Every stored version, oldest first."""
        with self._db.transaction() as conn:
            return [int(r[0]) for r in conn.execute("SELECT version FROM keyring_versions ORDER BY version")]

    def write(self, keyring: Keyring, link: ChainLink | None, *, expected: int | None = None) -> None:
        """Store ``keyring`` (and its link) as the new head in one transaction under the keyring lock.

        Raises :class:`ConflictError` ``keyring_changed`` when the head is not ``expected`` (when given) or
        already at or above ``keyring.version`` (a version is never reused or lowered), else as
        :func:`validate_keyring`.
        """
        validate_keyring(keyring, source=self.name)
        with self._db.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (KEYRING_LOCK,))
            head = _head(conn)
            if (expected is not None and head != expected) or (head is not None and head >= keyring.version):
                raise stale(head, keyring.version - 1 if expected is None else expected, self.name)
            if link is not None:
                conn.execute("DELETE FROM keyring_links WHERE version >= %s", (link.version,))
                conn.execute(
                    "INSERT INTO keyring_links(version, link) VALUES (%s, %s)",
                    (link.version, canonical_bytes(link)),
                )
            conn.execute(
                "INSERT INTO keyring_versions(version, document) VALUES (%s, %s)",
                (keyring.version, keyring_file_bytes(keyring)),
            )
            conn.execute(
                "INSERT INTO keyring_floor(id, version) VALUES (TRUE, %s) ON CONFLICT (id) "
                "DO UPDATE SET version = GREATEST(keyring_floor.version, EXCLUDED.version)",
                (keyring.version,),
            )
        with self._lock:
            self._polled = None  # this process sees its own write at once

    def _head(self) -> int | None:
        with self._db.transaction() as conn:
            return _head(conn)


def _head(conn: Conn) -> int | None:
    row = conn.execute("SELECT MAX(version) FROM keyring_versions").fetchone()
    return None if row is None or row[0] is None else int(row[0])
