"""Signing-key metadata (``cap-key.v1``) and the on-disk key store.

Owns: the metadata record and its fingerprint rule, RFC 3339 timestamps as written in key files, and
:class:`KeyStore`, which keeps ``<kid>.json`` (public metadata, pretty JSON) and ``<kid>.pem`` (PKCS#8
private key, mode 0600) in :attr:`DataLayout.keys_dir`. Private key bytes only ever go from a 0600 file into
an :class:`Ed25519Signer`; they never appear in a model, a repr, a log line or an error.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import re
import stat
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from core.canonical import pretty_bytes
from core.documents import parse_model
from core.errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    KeyError_,
    NotFoundError,
    RotationError,
)
from core.fsio import atomic_write
from core.layout import DataLayout
from core.signing import Ed25519Signer, derive_kid, load_public_key

KEY_SCHEMA: Final = "cap-key.v1"
DEFAULT_VALID_DAYS = 730
PRIVATE_KEY_MODE = 0o600
KEYS_DIR_MODE = 0o700
_KID = re.compile(r"[0-9a-f]{32}")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")


# --- timestamps -------------------------------------------------------------------------------------------


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with ``Z`` and whole seconds, e.g. ``2025-01-01T00:00:00Z``. Raises on naive datetimes."""
    if moment.tzinfo is None:
        raise InvalidInputError("timestamp must be timezone-aware", expected="an aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str, *, field: str = "timestamp") -> datetime:
    """Parse an RFC 3339 ``…Z`` timestamp. Raises :class:`InvalidInputError` naming ``field``."""
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        raise InvalidInputError(
            f"not an RFC 3339 UTC timestamp: {str(text)[:40]!r}", field=field, expected="YYYY-MM-DDTHH:MM:SSZ"
        )
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:  # the right shape but no such moment: month 13, February 30, hour 25
        raise InvalidInputError(
            f"not a valid date and time: {text!r} ({exc})", field=field, expected="YYYY-MM-DDTHH:MM:SSZ"
        ) from None


def _check_timestamp(text: str) -> str:
    if not _RFC3339.fullmatch(text):
        raise ValueError("expected an RFC 3339 UTC timestamp ending in Z")
    return text


Timestamp = Annotated[str, AfterValidator(_check_timestamp)]
KID_PATTERN = r"^[0-9a-f]{32}$"
Kid = Annotated[str, Field(pattern=KID_PATTERN)]


# --- metadata ---------------------------------------------------------------------------------------------


class KeyStatus(str, Enum):  # noqa: UP042 - str mix-in on purpose (JSON, comparisons)
    """Lifecycle: pending (prepared, not yet accepted) → active → retired; revoked is terminal."""

    PENDING = "pending"
    ACTIVE = "active"
    RETIRED = "retired"
    REVOKED = "revoked"


class KeyUsage(str, Enum):  # noqa: UP042 - str mix-in on purpose (JSON, comparisons)
    SIGNING = "signing"
    REGISTRY = "registry"


class KeyMetadata(BaseModel):
    """``cap-key.v1``: the public half of a signing key, fields in the original's order."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_: Literal["cap-key.v1"] = Field(default=KEY_SCHEMA, alias="schema")
    kid: Kid
    owner: str = Field(min_length=1)
    created_at: Timestamp
    valid_from: Timestamp
    valid_to: Timestamp
    algorithm: Literal["ed25519"] = "ed25519"
    status: KeyStatus = KeyStatus.ACTIVE
    usage: tuple[KeyUsage, ...] = (KeyUsage.SIGNING, KeyUsage.REGISTRY)
    public_key: str
    fingerprint: str
    comment: str | None = None


def fingerprint(public_key_b64: str) -> str:
    """``sha256:`` + hex of the first 16 bytes of **SHA3-256** of the raw key (the original's label, kept)."""
    raw = load_public_key(public_key_b64).public_bytes_raw()
    return "sha256:" + hashlib.sha3_256(raw).digest()[:16].hex()


def build_metadata(
    public_key_b64: str,
    owner: str,
    now: datetime,
    *,
    valid_days: int = DEFAULT_VALID_DAYS,
    status: KeyStatus = KeyStatus.ACTIVE,
    comment: str | None = None,
) -> KeyMetadata:
    """Metadata for a public key, valid from ``now`` for ``valid_days``. Raises :class:`InvalidInputError`."""
    if valid_days < 1:
        raise InvalidInputError("validity must be at least one day", field="valid_days", found=valid_days)
    stamp = format_timestamp(now)
    return KeyMetadata(
        kid=derive_kid(public_key_b64),
        owner=owner,
        created_at=stamp,
        valid_from=stamp,
        valid_to=format_timestamp(now + timedelta(days=valid_days)),
        status=status,
        public_key=public_key_b64,
        fingerprint=fingerprint(public_key_b64),
        comment=comment,
    )


def check_metadata(meta: KeyMetadata, *, source: str) -> None:
    """Raise IntegrityError naming ``source`` unless kid and fingerprint match; InvalidInput if malformed."""
    try:
        load_public_key(meta.public_key, field="public_key")
    except InvalidInputError as exc:
        raise InvalidInputError(
            exc.message, file=source, field="public_key", expected="base64 of 32 bytes"
        ) from exc
    expected = derive_kid(meta.public_key)
    if meta.kid != expected:
        raise IntegrityError(
            "key id does not match the public key",
            code="key_kid_mismatch",
            file=source,
            field="kid",
            found=meta.kid,
            expected=expected,
        )
    if meta.fingerprint != fingerprint(meta.public_key):
        raise IntegrityError(
            "fingerprint does not match the public key",
            code="key_fingerprint_mismatch",
            file=source,
            field="fingerprint",
            expected=fingerprint(meta.public_key),
        )


def parse_metadata(data: bytes, *, source: str) -> KeyMetadata:
    """Parse and check ``cap-key.v1`` bytes. Raises :class:`InvalidInputError` or :class:`IntegrityError`."""
    meta = parse_model(KeyMetadata, data, source=source, what="key metadata", expected=KEY_SCHEMA)
    check_metadata(meta, source=source)
    return meta


def check_kid(kid: str) -> str:
    """Return ``kid`` if it is 32 lowercase hex characters, else raise :class:`InvalidInputError`."""
    if not isinstance(kid, str) or not _KID.fullmatch(kid):
        raise InvalidInputError("not a key id", field="kid", found=str(kid)[:40], expected="32 lowercase hex")
    return kid


# --- the store --------------------------------------------------------------------------------------------


class KeyStore:
    """Key metadata and private key files under ``layout.keys_dir``; the only reader of ``*.pem`` files."""

    def __init__(self, layout: DataLayout) -> None:
        self._layout = layout

    @property
    def directory(self) -> Path:
        return self._layout.keys_dir

    def generate(
        self,
        owner: str,
        now: datetime,
        valid_days: int = DEFAULT_VALID_DAYS,
        *,
        status: KeyStatus = KeyStatus.ACTIVE,
        comment: str | None = None,
    ) -> KeyMetadata:
        """Create a key: ``<kid>.pem`` (0600), then ``<kid>.json``. Raises ConflictError on a reused kid."""
        signer = Ed25519Signer.generate()
        meta = build_metadata(
            signer.public_key_b64, owner, now, valid_days=valid_days, status=status, comment=comment
        )
        if self._layout.key_metadata_path(meta.kid).exists():
            raise ConflictError(
                "a key with this id already exists", code="key_exists", field="kid", found=meta.kid
            )
        self._ensure_dir()
        atomic_write(self._layout.private_key_path(meta.kid), signer.to_pem(), mode=PRIVATE_KEY_MODE)
        self._write(meta)
        return meta

    def import_public(self, metadata: KeyMetadata) -> KeyMetadata:
        """Store public metadata only. Idempotent; raises :class:`ConflictError` on a different record."""
        check_metadata(metadata, source="imported metadata")
        path = self._layout.key_metadata_path(metadata.kid)
        if path.exists():
            existing = self.get(metadata.kid)
            if existing != metadata:
                raise ConflictError(
                    "different metadata is stored under this key id",
                    code="key_exists",
                    file=str(path),
                    field="kid",
                    found=metadata.kid,
                )
            return existing
        self._ensure_dir()
        self._write(metadata)
        return metadata

    def get(self, kid: str) -> KeyMetadata:
        """Checked metadata of ``kid``. Raises NotFoundError ``key_not_found``, InvalidInput, Integrity."""
        path = self._layout.key_metadata_path(check_kid(kid))
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError("no such key", code="key_not_found", field="kid", found=kid) from exc
        meta = parse_metadata(data, source=str(path))
        if meta.kid != kid:
            raise IntegrityError(
                "key file holds a different key id",
                code="key_kid_mismatch",
                file=str(path),
                field="kid",
                found=meta.kid,
                expected=kid,
            )
        return meta

    def list(self) -> builtins.list[KeyMetadata]:
        """Every stored key, oldest first (then by kid). Raises as :meth:`get` on a bad file."""
        if not self.directory.is_dir():
            return []
        kids = [p.stem for p in self.directory.glob("*.json") if _KID.fullmatch(p.stem)]
        return sorted((self.get(kid) for kid in kids), key=lambda m: (m.created_at, m.kid))

    def has_private_key(self, kid: str) -> bool:
        return self._layout.private_key_path(check_kid(kid)).is_file()

    def signer(self, kid: str) -> Ed25519Signer:
        """The signer of ``kid``. Raises :class:`KeyError_` for a missing, exposed or mismatched key file."""
        meta = self.get(kid)
        if meta.status is KeyStatus.REVOKED:
            raise KeyError_("a revoked key cannot sign", code="key_revoked", field="kid", found=kid)
        path = self._layout.private_key_path(kid)
        signer = Ed25519Signer.from_pem(_read_private_file(path), source=str(path))
        if signer.kid != kid:
            raise KeyError_(
                "private key file belongs to a different key id",
                code="key_kid_mismatch",
                file=str(path),
                found=signer.kid,
                expected=kid,
            )
        return signer

    def set_status(self, kid: str, status: KeyStatus) -> KeyMetadata:
        """Rewrite the status of ``kid``. Raises :class:`RotationError` when leaving terminal ``revoked``."""
        meta = self.get(kid)
        if meta.status is status:
            return meta
        if meta.status is KeyStatus.REVOKED:
            raise RotationError(
                "a revoked key cannot change status",
                code="key_revoked",
                field="status",
                found=status.value,
                expected="revoked",
            )
        updated = meta.model_copy(update={"status": status})
        self._write(updated)
        return updated

    def _ensure_dir(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=KEYS_DIR_MODE)

    def _write(self, meta: KeyMetadata) -> None:
        atomic_write(self._layout.key_metadata_path(meta.kid), pretty_bytes(meta) + b"\n")


def load_operator_signer(path: Path) -> Ed25519Signer:
    """The operator's signer from its PKCS#8 PEM (0600, regular file). Raises :class:`KeyError_`."""
    return Ed25519Signer.from_pem(_read_private_file(Path(path)), source=str(path))


def _read_private_file(path: Path) -> bytes:
    """Read a regular private key file accessible by its owner only. Raises :class:`KeyError_`."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError as exc:
        raise KeyError_("no private key for this key id", code="private_key_missing", file=str(path)) from exc
    except OSError as exc:
        raise KeyError_(
            f"cannot open private key file: {exc.strerror}", code="private_key_unreadable", file=str(path)
        ) from exc
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeyError_(
                "private key path is not a regular file", code="private_key_unreadable", file=str(path)
            )
        if info.st_mode & 0o077:
            raise KeyError_(
                f"private key file is accessible by group or others (mode {stat.S_IMODE(info.st_mode):04o})",
                code="key_file_permissions",
                file=str(path),
                expected="mode 0600 (chmod 600 the file)",
            )
        return fh.read()
