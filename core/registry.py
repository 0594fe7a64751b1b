"""The proof registry: every verified proof, signed by the registering key, in SQLite.

Owns :class:`RegistryEntry`, the entry-signature rule (original §3.9, byte compatible) and the
:class:`Registry` store. Signature rule: core = compact JSON of ``{id, manifest_hash, proof_hash,
timestamp_file (null when absent), registered_at}``; digest = BLAKE3(core), 32 raw bytes; Ed25519
signs the digest bytes; signature and public key are standard base64.
"""

from __future__ import annotations

import base64
import binascii
import os
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from core import db
from core.canonical import Record, canonical_bytes
from core.digest import blake3_raw, digests_equal, sha3_hex
from core.errors import InvalidInputError, NotFoundError
from core.signing import Signer, derive_kid, verify_signature

REGISTRY_VERSION = "1.0"
SIGNATURE_SCHEME = "ed25519"
COMPONENT = "registry"

PublicKeyLookup = Callable[[str], str | None]
"""kid → standard-base64 public key, or None when the kid is unknown."""


class Verdict(str, Enum):  # noqa: UP042 - str mix-in on purpose (JSON, comparisons)
    """Overall verification result recorded with an entry (the report's ``result``)."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


class RegistryEntry(BaseModel):
    """One registered proof. The first five fields are the signed core."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    manifest_hash: str
    proof_hash: str
    timestamp_file: str | None = None
    registered_at: str
    signature: str
    public_key: str
    kid: str
    signature_scheme: str = SIGNATURE_SCHEME
    subject: str
    policy_hash: str
    ir_hash: str
    company_root: str
    supplier_root: str
    ubo_root: str
    result: Verdict
    accepted: bool
    proof_json: str


_COLUMNS = tuple(RegistryEntry.model_fields)

MIGRATIONS = [
    """
    CREATE TABLE registry_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO registry_meta(key, value) VALUES ('registry_version', '1.0');
    CREATE TABLE registry_entries (
        id TEXT PRIMARY KEY,
        manifest_hash TEXT NOT NULL,
        proof_hash TEXT NOT NULL,
        timestamp_file TEXT,
        registered_at TEXT NOT NULL,
        signature TEXT NOT NULL,
        public_key TEXT NOT NULL,
        kid TEXT NOT NULL,
        signature_scheme TEXT NOT NULL,
        subject TEXT NOT NULL,
        policy_hash TEXT NOT NULL,
        ir_hash TEXT NOT NULL,
        company_root TEXT NOT NULL,
        supplier_root TEXT NOT NULL,
        ubo_root TEXT NOT NULL,
        result TEXT NOT NULL CHECK (result IN ('OK', 'WARN', 'FAIL')),
        accepted INTEGER NOT NULL CHECK (accepted IN (0, 1)),
        proof_json TEXT NOT NULL
    );
    CREATE INDEX idx_registry_hashes ON registry_entries(manifest_hash, proof_hash);
    CREATE INDEX idx_registry_subject ON registry_entries(subject, registered_at);
    CREATE INDEX idx_registry_kid ON registry_entries(kid, registered_at);
    """,
]


# ---------------------------------------------------------------- signature rule (pure)


def entry_core_bytes(
    id_: str, manifest_hash: str, proof_hash: str, timestamp_file: str | None, registered_at: str
) -> bytes:
    """The signed core: compact JSON in field order, ``timestamp_file`` kept as null."""
    core = Record(
        id=id_,
        manifest_hash=manifest_hash,
        proof_hash=proof_hash,
        timestamp_file=timestamp_file,
        registered_at=registered_at,
    )
    return canonical_bytes(core)


def entry_digest(entry: RegistryEntry) -> bytes:
    """BLAKE3 of the entry's core bytes (32 raw bytes): what the signature covers."""
    core = entry_core_bytes(
        entry.id, entry.manifest_hash, entry.proof_hash, entry.timestamp_file, entry.registered_at
    )
    return blake3_raw(core)


def check_entry(entry: RegistryEntry, public_key_lookup: PublicKeyLookup | None = None) -> list[str]:
    """Every reason ``entry`` does not verify; empty when it does.

    Checks the scheme, that ``kid`` is derived from ``public_key``, that the lookup (when given)
    knows the kid with the same key, the Ed25519 signature over the core digest, and that
    ``proof_hash`` matches the stored proof bytes.
    """
    problems: list[str] = []
    if entry.signature_scheme != SIGNATURE_SCHEME:
        problems.append(f"unsupported signature scheme {entry.signature_scheme!r}")
    if derive_kid(entry.public_key) != entry.kid:
        problems.append("kid is not derived from the entry's public key")
    if public_key_lookup is not None:
        known = public_key_lookup(entry.kid)
        if known is None:
            problems.append(f"kid {entry.kid} is unknown")
        elif known != entry.public_key:
            problems.append(f"public key does not match the key registered for kid {entry.kid}")
    if not verify_signature(entry.public_key, _b64(entry.signature), entry_digest(entry)):
        problems.append("entry signature does not verify")
    if not digests_equal(sha3_hex(entry.proof_json.encode("utf-8")), entry.proof_hash):
        problems.append("proof_hash does not match the stored proof bytes")
    return problems


def verify_entry(entry: RegistryEntry, public_key_lookup: PublicKeyLookup | None = None) -> bool:
    """True iff :func:`check_entry` finds nothing wrong."""
    return not check_entry(entry, public_key_lookup)


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""


def sign_entry(entry_id: str, unsigned: dict[str, Any], signer: Signer) -> RegistryEntry:
    """Complete ``unsigned`` (every field but id, signature, key and kid) into a signed entry."""
    core = entry_core_bytes(
        entry_id,
        unsigned["manifest_hash"],
        unsigned["proof_hash"],
        unsigned["timestamp_file"],
        unsigned["registered_at"],
    )
    signature = base64.b64encode(signer.sign(blake3_raw(core))).decode("ascii")
    return RegistryEntry(
        id=entry_id, signature=signature, public_key=signer.public_key_b64, kid=signer.kid, **unsigned
    )


def unsigned_entry(
    proof_bytes: bytes,
    manifest_bytes: bytes,
    *,
    facts: dict[str, str],
    roots: dict[str, str],
    result: Verdict | str,
    accepted: bool,
    now: datetime,
    timestamp_file: str | None,
) -> dict[str, Any]:
    """Every field of a new entry but its id, signature, key and kid (what both engines store).

    Raises :class:`InvalidInputError` when the proof bytes are not UTF-8 or ``result`` is unknown.
    """
    return {
        "manifest_hash": sha3_hex(manifest_bytes),
        "proof_hash": sha3_hex(proof_bytes),
        "timestamp_file": timestamp_file,
        "registered_at": db.timestamp_text(now),
        **facts,
        **roots,
        "result": _outcome(result),
        "accepted": accepted,
        "proof_json": _utf8(proof_bytes),
    }


def next_entry_id(count: int, taken: Callable[[str], bool]) -> str:
    """The original's ``proof_%03d`` of count + 1, stepping past ids already in use."""
    number = count + 1
    while taken(candidate := f"proof_{number:03d}"):
        number += 1
    return candidate


HIGH_WATER_KEY = "entry_high_water"


def entry_number(entry_id: str) -> int:
    """The number in ``proof_NNN`` (0 for any other id)."""
    digits = entry_id.removeprefix("proof_")
    return int(digits) if digits != entry_id and digits.isdigit() else 0


def high_water(conn: sqlite3.Connection) -> int:
    """The highest entry number ever handed out by this registry or any registry it was restored over."""
    row = conn.execute("SELECT value FROM registry_meta WHERE key = ?", (HIGH_WATER_KEY,)).fetchone()
    if row is not None and str(row[0]).isdigit():
        return int(row[0])  # every insert since the mark exists keeps it current
    ids = (r[0] for r in conn.execute("SELECT id FROM registry_entries"))
    return max([0, *map(entry_number, ids)])


def _is_registry(conn: sqlite3.Connection) -> bool:
    found = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {"registry_meta", "registry_entries"} <= found


def carry_high_water(live: Path, staged: Path) -> int:
    """Restore: raise the staged registry's high-water mark to the live one's, so no entry id that the
    live registry handed out is ever handed out again. Returns the mark (0 when there is no registry)."""
    if not live.exists() or not staged.exists():
        return 0
    src = sqlite3.connect(live)  # read-write but query-only: closing it leaves no -wal/-shm behind
    try:
        src.execute("PRAGMA query_only = 1")
        mark = high_water(src) if _is_registry(src) else 0
    except sqlite3.DatabaseError:
        mark = 0  # an unreadable live registry is what the restore replaces; nothing to carry
    finally:
        src.close()
    dst = sqlite3.connect(staged)
    try:
        if not _is_registry(dst):
            return 0
        with dst:
            mark = max(mark, high_water(dst))
            dst.execute(
                "INSERT OR REPLACE INTO registry_meta(key, value) VALUES (?, ?)", (HIGH_WATER_KEY, str(mark))
            )
    finally:
        dst.close()
    return mark


# ---------------------------------------------------------------- the store


class RegistryReads:
    """The registry's queries, written once for both engines (this SQLite store and
    :class:`core.store.postgres.registry.PgRegistry`): an engine names its placeholder, how it writes true
    and its newest-first order, and runs SQL through ``_rows``."""

    P: ClassVar[str] = "?"
    TRUE: ClassVar[str] = "1"
    NEWEST_FIRST: ClassVar[str] = "ORDER BY registered_at DESC, length(id) DESC, id DESC"

    def get(self, entry_id: str) -> RegistryEntry:
        """The entry with ``entry_id``. Raises :class:`NotFoundError` (``registry_entry_not_found``)."""
        found = self._one(f"WHERE id = {self.P}", (entry_id,))
        if found is None:
            raise NotFoundError(
                f"no registry entry {entry_id!r}", code="registry_entry_not_found", field="id"
            )
        return found

    def find(self, manifest_hash: str, proof_hash: str) -> RegistryEntry | None:
        """The newest entry for this manifest/proof hash pair, or None."""
        return self._one(
            f"WHERE manifest_hash = {self.P} AND proof_hash = {self.P}", (manifest_hash, proof_hash)
        )

    def latest_accepted(self, subject: str) -> RegistryEntry | None:
        """The drift baseline: the last accepted entry of ``subject`` (by registered_at, then id)."""
        return self._one(f"WHERE subject = {self.P} AND accepted = {self.TRUE}", (subject,))

    def entries(self, limit: int | None = None, since: datetime | None = None) -> list[RegistryEntry]:
        """Entries newest first, optionally only those registered at or after ``since``."""
        params: list[Any] = []
        where = ""
        if since is not None:
            where, params = f"WHERE registered_at >= {self.P}", [db.timestamp_text(since)]
        sql = f"{_SELECT} {where} {self.NEWEST_FIRST}"
        if limit is not None:
            sql += f" LIMIT {self.P}"
            params.append(int(limit))
        return self._many(sql, tuple(params))

    def count_signed_by(self, kid: str, since: datetime | None = None) -> int:
        """How many entries ``kid`` signed (at or after ``since``): the census for key rotation."""
        sql = f"SELECT COUNT(*) FROM registry_entries WHERE kid = {self.P}"  # noqa: S608
        params: list[Any] = [kid]
        if since is not None:
            sql += f" AND registered_at >= {self.P}"
            params.append(db.timestamp_text(since))
        rows = self._rows(sql, tuple(params))
        return int(str(rows[0][0])) if rows else 0

    def heads(self) -> list[tuple[str, str]]:
        """``(id, proof_hash)`` of the newest entry of each subject (the entries drift monitoring reports)."""
        sql = f"SELECT subject, id, proof_hash FROM registry_entries {self.NEWEST_FIRST}"  # noqa: S608
        newest: dict[str, tuple[str, str]] = {}
        for subject, entry_id, proof_hash in self._rows(sql, ()):
            newest.setdefault(str(subject), (str(entry_id), str(proof_hash)))
        return list(newest.values())

    def meta(self) -> dict[str, str]:
        """The ``registry_meta`` rows (``registry_version`` = ``"1.0"``)."""
        rows = self._rows("SELECT key, value FROM registry_meta ORDER BY key", ())
        return {str(k): str(v) for k, v in rows}

    verify_entry = staticmethod(verify_entry)

    def _one(self, where: str, params: tuple[Any, ...]) -> RegistryEntry | None:
        found = self._many(f"{_SELECT} {where} {self.NEWEST_FIRST} LIMIT 1", params)
        return found[0] if found else None

    def _many(self, sql: str, params: tuple[Any, ...]) -> list[RegistryEntry]:
        return [_from_row(row) for row in self._rows(sql, params)]

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        raise NotImplementedError


class Registry(RegistryReads, db.SqliteStore):
    """The SQLite proof registry. One instance may be shared across threads.

    Raises :class:`StorageError` (transient when locked) for database failures.
    """

    component = COMPONENT
    migrations = MIGRATIONS

    def register(
        self,
        proof_bytes: bytes,
        manifest_bytes: bytes,
        *,
        subject: str,
        policy_hash: str,
        ir_hash: str,
        company_root: str,
        supplier_root: str,
        ubo_root: str,
        result: Verdict | str,
        accepted: bool,
        signer: Signer,
        now: datetime,
        timestamp_file: str | None = None,
    ) -> RegistryEntry:
        """Hash, sign and store a proof; returns the new entry.

        Raises :class:`InvalidInputError` when the proof bytes are not UTF-8 or ``result`` is unknown.
        """
        unsigned = unsigned_entry(
            proof_bytes,
            manifest_bytes,
            facts={"subject": subject, "policy_hash": policy_hash, "ir_hash": ir_hash},
            roots={"company_root": company_root, "supplier_root": supplier_root, "ubo_root": ubo_root},
            result=result,
            accepted=accepted,
            now=now,
            timestamp_file=timestamp_file,
        )
        with self._lock, db.transaction(self._conn, self.path):
            count = int(self._conn.execute("SELECT COUNT(*) FROM registry_entries").fetchone()[0])
            entry_id = next_entry_id(max(count, high_water(self._conn)), self._taken)
            entry = sign_entry(entry_id, unsigned, signer)
            self._insert(entry)
            self._conn.execute(
                "INSERT OR REPLACE INTO registry_meta(key, value) VALUES (?, ?)",
                (HIGH_WATER_KEY, str(entry_number(entry_id))),
            )
        return entry

    # -------------------------------------------------------------- internals

    def _taken(self, entry_id: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM registry_entries WHERE id = ?", (entry_id,)).fetchone()
        return row is not None

    def _insert(self, entry: RegistryEntry) -> None:
        values = [_to_column(name, getattr(entry, name)) for name in _COLUMNS]
        self._conn.execute(_INSERT, values)

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock, db.guard(self.path):
            return list(self._conn.execute(sql, params).fetchall())


_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM registry_entries"  # noqa: S608 - fixed column names
_INSERT = f"INSERT INTO registry_entries ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"  # noqa: S608


def _to_column(name: str, value: Any) -> Any:
    if name == "accepted":
        return 1 if value else 0
    if isinstance(value, Verdict):
        return value.value
    return value


def _from_row(row: sqlite3.Row | tuple[Any, ...]) -> RegistryEntry:
    data = dict(zip(_COLUMNS, row, strict=True))
    data["accepted"] = bool(data["accepted"])
    return RegistryEntry(**data)


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            "proof bytes are not UTF-8 text", field="proof", expected="UTF-8 JSON"
        ) from exc


def _outcome(value: Verdict | str) -> Verdict:
    try:
        return Verdict(value)
    except ValueError as exc:
        raise InvalidInputError(
            f"unknown result {value!r}", field="result", expected="OK, WARN or FAIL"
        ) from exc


class RegistryHandle:
    """One open registry for a long-running process; reopened when the file is replaced (e.g. by a restore).

    ``get()`` returns ``None`` while the file does not exist (a fresh or broken data directory).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._registry: Registry | None = None
        self._stamp: tuple[int, int] | None = None

    def get(self) -> Registry | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self.close()
            return None
        stamp = (st.st_dev, st.st_ino)
        with self._lock:
            if self._registry is None or stamp != self._stamp:
                if self._registry is not None:
                    self._registry.close()
                self._registry, self._stamp = Registry(self.path), stamp
            return self._registry

    def close(self) -> None:
        with self._lock:
            if self._registry is not None:
                self._registry.close()
            self._registry, self._stamp = None, None
