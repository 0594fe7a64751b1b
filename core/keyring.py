"""The keyring (``cap-keyring.v1``): which public keys verify, which one signs, and its rotation history.

Owns: the keyring record, its structural checks (:func:`validate_keyring`, no I/O), loading and saving with
rollback protection, the key-acceptance rule (:func:`key_acceptance`, pure) and :class:`KeyringWatcher`,
which hot-reloads ``keyring.json`` for the API and CLI. The keyring never holds private key material.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from core.canonical import pretty_bytes
from core.documents import parse_model
from core.errors import CapError, IntegrityError, InvalidInputError, KeyError_, NotFoundError, RotationError
from core.fsio import atomic_write
from core.keys import KeyMetadata, KeyStatus, Kid, Timestamp, format_timestamp, parse_timestamp
from core.modes import CheckStatus, EnforcementMode
from core.signing import derive_kid

KEYRING_SCHEMA: Final = "cap-keyring.v1"
ACTION_BOOTSTRAP = "bootstrap"
DEFAULT_REFRESH_COOLDOWN_S = 30.0


class KeyringMode(str, Enum):  # noqa: UP042 - str mix-in on purpose (JSON, comparisons)
    SINGLE_KEY = "single-key"
    DUAL_ACCEPT = "dual-accept"


class KeyringEntry(BaseModel):
    """One public key the verifier knows, with its status and validity window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kid: Kid
    public_key: str
    status: KeyStatus
    valid_from: Timestamp
    valid_to: Timestamp
    retired_at: Timestamp | None = None


class HistoryEvent(BaseModel):
    """One applied phase transition or administrative action, in the keyring version it produced."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=1)
    action: str = Field(min_length=1)
    actor: str = Field(min_length=1)
    at: Timestamp
    kid: Kid | None = None
    detail: str | None = None


class Keyring(BaseModel):
    """``cap-keyring.v1``. ``version`` only ever grows; a lower one than already seen is a rollback."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_: Literal["cap-keyring.v1"] = Field(default=KEYRING_SCHEMA, alias="schema")
    version: int = Field(ge=1)
    mode: KeyringMode = KeyringMode.SINGLE_KEY
    default_signing_kid: Kid
    dual_accept_until: Timestamp | None = None
    keys: tuple[KeyringEntry, ...]
    history: tuple[HistoryEvent, ...] = ()

    def entry(self, kid: str) -> KeyringEntry | None:
        return next((e for e in self.keys if e.kid == kid), None)

    @property
    def default_entry(self) -> KeyringEntry:
        """The default signer's entry. Raises :class:`KeyError_` if it is missing."""
        entry = self.entry(self.default_signing_kid)
        if entry is None:
            raise KeyError_(
                "default signing key is not in the keyring",
                code="keyring_default_missing",
                found=self.default_signing_kid,
            )
        return entry


class KeyAcceptance(BaseModel):
    """Whether a signature by some KID is acceptable now, and why."""

    model_config = ConfigDict(frozen=True)

    status: CheckStatus
    reason: str


# --- structure, load, save --------------------------------------------------------------------------------


def entry_from_metadata(meta: KeyMetadata, *, status: KeyStatus | None = None) -> KeyringEntry:
    """A keyring entry for a key's public metadata, optionally with a different status."""
    return KeyringEntry(
        kid=meta.kid,
        public_key=meta.public_key,
        status=status or meta.status,
        valid_from=meta.valid_from,
        valid_to=meta.valid_to,
    )


def validate_keyring(keyring: Keyring, *, source: str = "keyring") -> None:
    """Check a keyring's invariants without I/O. Raises :class:`IntegrityError`, :class:`KeyError_` or
    :class:`InvalidInputError`, each naming ``source``."""
    _validate_entries(keyring, source)
    _validate_default(keyring, source)
    if keyring.mode is KeyringMode.DUAL_ACCEPT and keyring.dual_accept_until is None:
        raise InvalidInputError(
            "dual-accept keyring without an end",
            file=source,
            field="dual_accept_until",
            expected="an RFC 3339 timestamp",
        )
    _validate_history(keyring, source)


def _validate_entries(keyring: Keyring, source: str) -> None:
    seen: set[str] = set()
    for entry in keyring.keys:
        if entry.kid in seen:
            raise IntegrityError(
                "key id listed twice", code="keyring_duplicate_kid", file=source, found=entry.kid
            )
        seen.add(entry.kid)
        if derive_kid(entry.public_key) != entry.kid:
            raise IntegrityError(
                "key id does not match its public key",
                code="key_kid_mismatch",
                file=source,
                field="keys.kid",
                found=entry.kid,
                expected=derive_kid(entry.public_key),
            )


def _validate_default(keyring: Keyring, source: str) -> None:
    default = keyring.entry(keyring.default_signing_kid)
    if default is None:
        raise KeyError_(
            "default signing key is not in the keyring",
            code="keyring_default_missing",
            file=source,
            field="default_signing_kid",
            found=keyring.default_signing_kid,
        )
    if default.status is not KeyStatus.ACTIVE:
        raise KeyError_(
            "default signing key is not active",
            code="keyring_default_inactive",
            file=source,
            field="default_signing_kid",
            found=default.status.value,
            expected="active",
        )


def _validate_history(keyring: Keyring, source: str) -> None:
    previous = 0
    for event in keyring.history:
        if event.version < previous or event.version > keyring.version:
            raise IntegrityError(
                "history versions are not monotonic",
                code="keyring_history_order",
                file=source,
                field="history.version",
                found=event.version,
                expected=f"between {previous} and {keyring.version}",
            )
        previous = event.version


def parse_keyring(data: bytes, *, source: str, min_version: int | None = None) -> Keyring:
    """Parse and validate keyring bytes. Raises InvalidInput/Integrity/KeyError_, or RotationError
    ``keyring_rollback`` when the version is below ``min_version``."""
    keyring = parse_model(Keyring, data, source=source, what="keyring", expected=KEYRING_SCHEMA)
    validate_keyring(keyring, source=source)
    if min_version is not None and keyring.version < min_version:
        raise RotationError(
            "keyring version is older than the one already trusted",
            code="keyring_rollback",
            file=source,
            found=keyring.version,
            expected=f">= {min_version}",
        )
    return keyring


def load_keyring(path: str | Path, *, min_version: int | None = None) -> Keyring:
    """Read and validate ``path``. Raises NotFoundError ``keyring_not_found``, else as parse_keyring."""
    data, _ = _read_stamped(Path(path))
    return parse_keyring(data, source=str(path), min_version=min_version)


def keyring_file_bytes(keyring: Keyring) -> bytes:
    """The exact bytes :func:`save_keyring` writes (what a keyring signature covers)."""
    return pretty_bytes(keyring) + b"\n"


def save_keyring(path: str | Path, keyring: Keyring) -> Path:
    """Validate, then write ``keyring`` atomically as pretty JSON and raise the rollback floor to its
    version. Raises as :func:`validate_keyring`."""
    validate_keyring(keyring, source=str(path))
    written = atomic_write(path, keyring_file_bytes(keyring))
    raise_floor(floor_path(path), keyring.version)
    return written


# --- the rollback floor -----------------------------------------------------------------------------------

FLOOR_SCHEMA: Final = "cap-keyring-floor.v1"
FLOOR_FILE: Final = "keyring.floor.json"


class KeyringFloor(BaseModel):
    """``cap-keyring-floor.v1``: the highest keyring version this data directory has seen.

    Kept beside the keyring, not in it, so replacing ``keyring.json`` by an older (validly signed) copy
    is refused after a restart too. Only a restore with an explicit ``--allow-key-rollback`` lowers it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_: Literal["cap-keyring-floor.v1"] = Field(default=FLOOR_SCHEMA, alias="schema")
    version: int = Field(ge=1)


def floor_path(keyring_path: str | Path) -> Path:
    return Path(keyring_path).with_name(FLOOR_FILE)


def read_floor(path: str | Path) -> int | None:
    """The floor recorded at ``path`` (a ``keyring.floor.json``), or None when there is none.

    Raises :class:`InvalidInputError` naming the file when it is malformed.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    return parse_model(
        KeyringFloor, data, source=str(path), what="keyring floor", expected=FLOOR_SCHEMA
    ).version


def write_floor(path: str | Path, version: int) -> Path:
    """Set the floor at ``path`` to ``version`` (restore uses it; lowering it is an operator's decision)."""
    return atomic_write(path, pretty_bytes(KeyringFloor(version=version)) + b"\n")


def raise_floor(path: str | Path, version: int) -> None:
    """Raise the floor at ``path`` to ``version``; never lowers it."""
    current = read_floor(path)
    if current is None or version > current:
        write_floor(path, version)


def read_keyring_bytes(path: str | Path) -> bytes:
    """The exact bytes of the keyring file. Raises NotFoundError ``keyring_not_found``."""
    return _read_stamped(Path(path))[0]


def bootstrap_keyring(metadata: KeyMetadata, now: datetime, actor: str) -> Keyring:
    """Version 1 with ``metadata``'s key as active default. Raises RotationError if retired/revoked."""
    if metadata.status in (KeyStatus.RETIRED, KeyStatus.REVOKED):
        raise RotationError(
            "a retired or revoked key cannot start a keyring",
            code="bootstrap_key_unusable",
            field="status",
            found=metadata.status.value,
            expected="pending or active",
        )
    event = HistoryEvent(
        version=1, action=ACTION_BOOTSTRAP, actor=actor, at=format_timestamp(now), kid=metadata.kid
    )
    return Keyring(
        version=1,
        default_signing_kid=metadata.kid,
        keys=(entry_from_metadata(metadata, status=KeyStatus.ACTIVE),),
        history=(event,),
    )


# --- acceptance (pure) ------------------------------------------------------------------------------------


def _judged(status: CheckStatus, reason: str) -> KeyAcceptance:
    return KeyAcceptance(status=status, reason=reason)


def _retired_like(mode: EnforcementMode, why: str) -> KeyAcceptance:
    if mode is EnforcementMode.STRICT:
        return _judged(CheckStatus.FAIL, f"{why}; not accepted in strict mode")
    return _judged(CheckStatus.WARN, f"{why}; accepted with a warning in {mode.value} mode")


def key_acceptance(keyring: Keyring, kid: str, mode: EnforcementMode, now: datetime) -> KeyAcceptance:
    """Judge a signature's KID against the keyring at ``now`` (docs/formats/keys.md, acceptance table).

    Unknown, revoked, pending and not-yet-valid keys FAIL. Retired keys WARN (relaxed, audit) or FAIL
    (strict). Active keys are OK inside their validity window and FAIL outside it. In dual-accept mode the
    non-default active key is OK until ``dual_accept_until`` and judged like a retired key afterwards.
    """
    entry = keyring.entry(kid)
    if entry is None:
        return _judged(CheckStatus.FAIL, f"key {kid} is not in keyring v{keyring.version}")
    if entry.status is KeyStatus.REVOKED:
        return _judged(CheckStatus.FAIL, f"key {kid} is revoked")
    if entry.status is KeyStatus.PENDING:
        return _judged(CheckStatus.FAIL, f"key {kid} is pending and not yet accepted")
    if now < parse_timestamp(entry.valid_from, field="valid_from"):
        return _judged(CheckStatus.FAIL, f"key {kid} is not valid before {entry.valid_from}")
    if entry.status is KeyStatus.RETIRED:
        return _retired_like(mode, f"key {kid} is retired")
    if now > parse_timestamp(entry.valid_to, field="valid_to"):
        return _judged(CheckStatus.FAIL, f"key {kid} expired at {entry.valid_to}")
    return _active_acceptance(keyring, kid, mode, now)


def _active_acceptance(keyring: Keyring, kid: str, mode: EnforcementMode, now: datetime) -> KeyAcceptance:
    if kid == keyring.default_signing_kid:
        return _judged(CheckStatus.OK, f"key {kid} is the active signing key")
    until = keyring.dual_accept_until
    if keyring.mode is not KeyringMode.DUAL_ACCEPT or until is None:
        return _judged(CheckStatus.OK, f"key {kid} is active")
    if now <= parse_timestamp(until, field="dual_accept_until"):
        return _judged(CheckStatus.OK, f"key {kid} is accepted during dual-accept until {until}")
    return _retired_like(mode, f"dual-accept for key {kid} ended at {until}, so it counts as retired")


# --- hot reload -------------------------------------------------------------------------------------------

FileStamp = tuple[int, ...]


def _read_stamped(path: Path) -> tuple[bytes, FileStamp]:
    """The bytes of ``path`` and the (mtime_ns, size, inode) of the very file read."""
    try:
        with path.open("rb") as fh:
            info = os.fstat(fh.fileno())
            return fh.read(), (info.st_mtime_ns, info.st_size, info.st_ino)
    except FileNotFoundError as exc:
        raise NotFoundError("keyring file not found", code="keyring_not_found", file=str(path)) from exc


def _stamp(path: Path) -> FileStamp | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


class KeyringSource(Protocol):
    """Where a :class:`KeyringWatcher` reads the keyring: its file (:class:`FileKeyringSource`) or a database
    (:mod:`core.store`). ``stamp`` is cheap and changes whenever the stored keyring does."""

    @property
    def name(self) -> str: ...
    def stamp(self) -> FileStamp | None: ...
    def read(self) -> tuple[bytes, FileStamp]: ...
    def floor(self) -> int | None: ...


class FileKeyringSource:
    """``keyring.json`` and the floor file beside it; the stamp is the file's (mtime_ns, size, inode)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def name(self) -> str:
        return str(self.path)

    def stamp(self) -> FileStamp | None:
        return _stamp(self.path)

    def read(self) -> tuple[bytes, FileStamp]:
        """The bytes and their stamp. Raises NotFoundError ``keyring_not_found``."""
        return _read_stamped(self.path)

    def floor(self) -> int | None:
        return read_floor(floor_path(self.path))


class KeyringWatcher:
    """Holds the last good keyring of one file and reloads it when the file changes. Thread-safe.

    A replacement that fails to load, or whose version is lower than the one held (or equal with different
    content), or below the persisted floor, or that ``guard`` refuses (the signature chain), is refused:
    the old keyring stays in use and the error is kept in :attr:`last_error`. When the data dir's
    generation file changes (a restore), the held version no longer counts as a floor; the persisted one does.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        cooldown_seconds: float = DEFAULT_REFRESH_COOLDOWN_S,
        clock: Callable[[], float] = time.monotonic,
        generation_path: str | Path | None = None,
        guard: Callable[[bytes, Keyring], None] | None = None,
        source: KeyringSource | None = None,
    ) -> None:
        self._path = Path(path)
        self._source: KeyringSource = source or FileKeyringSource(path)
        self._generation_path = None if generation_path is None else Path(generation_path)
        self._generation: FileStamp | None = None
        self._guard = guard
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._keyring: Keyring | None = None
        self._stamp: FileStamp | None = None
        self._last_refresh: float | None = None
        self._last_error: CapError | None = None
        self._loaded_at: datetime | None = None

    @property
    def path(self) -> Path:
        return self._path

    @property
    def last_error(self) -> CapError | None:
        return self._last_error

    @property
    def loaded_at(self) -> datetime | None:
        return self._loaded_at

    def current(self, now: datetime) -> Keyring:
        """The keyring in force, reloaded first if the file or the data dir's generation changed.

        Raises only if none was ever loaded.
        """
        with self._lock:
            generation = self._generation_stamp()
            if generation != self._generation:
                self._reload(now, new_generation=True)
                if self._last_error is None:
                    self._generation = generation
            try:
                stamp = self._source.stamp()
            except CapError as exc:  # the store is unreadable (a database down): keep the last good keyring
                self._last_error = exc
                return self._held()
            if stamp is None or stamp != self._stamp:
                self._reload(now)
            return self._held()

    def _generation_stamp(self) -> FileStamp | None:
        return None if self._generation_path is None else _stamp(self._generation_path)

    def refresh(self, now: datetime) -> bool:
        """Re-read the file even if unchanged, at most once per cool-down. True if a re-read happened."""
        with self._lock:
            tick = self._clock()
            if self._last_refresh is not None and tick - self._last_refresh < self._cooldown:
                return False
            self._last_refresh = tick
            self._reload(now)
            return True

    def acceptance(self, kid: str, mode: EnforcementMode, now: datetime) -> KeyAcceptance:
        """:func:`key_acceptance` on the current keyring; an unknown KID triggers one cooled-down refresh."""
        keyring = self.current(now)
        if keyring.entry(kid) is None and self.refresh(now):
            keyring = self.current(now)
        return key_acceptance(keyring, kid, mode, now)

    def _held(self) -> Keyring:
        if self._keyring is None:
            raise self._last_error or NotFoundError(
                "no keyring loaded", code="keyring_not_found", file=self._source.name
            )
        return self._keyring

    def _reload(self, now: datetime, *, new_generation: bool = False) -> None:
        """Re-read the file. Within one generation the held version is the floor; when the generation
        moved (a restore), the persisted floor is, so an operator-allowed rollback is followed. Without a
        generation file (the database, ADR 0015) a persisted floor below the held version is that signal:
        only an ``--allow-key-rollback`` restore lowers it."""
        try:
            data, stamp = self._source.read()
            self._stamp = stamp
            held = None if new_generation else self._keyring
            floor = self._source.floor()
            if (
                held is not None
                and self._generation_path is None
                and floor is not None
                and floor < held.version
            ):
                held = None
            if held is not None:
                floor = max(floor or 0, held.version)
            candidate = parse_keyring(data, source=self._source.name, min_version=floor)
            if self._guard is not None:
                self._guard(data, candidate)
            if held is not None and candidate.version == held.version and candidate != held:
                raise RotationError(
                    "keyring changed without a new version",
                    code="keyring_version_reused",
                    file=self._source.name,
                    found=candidate.version,
                    expected=f"> {held.version}",
                )
        except CapError as exc:
            self._last_error = exc
            return
        self._keyring, self._last_error, self._loaded_at = candidate, None, now
