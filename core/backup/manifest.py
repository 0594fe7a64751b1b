"""The backup manifest ``backup.manifest.v1``: model, stored bytes, signature, and the keyring view.

The manifest is stored as its canonical JSON bytes. Its signature is Ed25519 over
``b"backup.manifest.v1\\n" + canonical_bytes(manifest without "signature")``. Parsing refuses any
stored form that is not exactly canonical, so every byte of the stored manifest is covered.
Acceptance rules here do no I/O: ``check_*`` returns a result, ``verify_*`` raises.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.canonical import canonical_bytes
from core.errors import ConfigError, IntegrityError, InvalidInputError, VerificationError
from core.signing import ALG, Signer, derive_kid, verify_signature
from core.store.url import Engine

MANIFEST_VERSION: Final = "backup.manifest.v1"
MANIFEST_DOMAIN = b"backup.manifest.v1\n"
BACKUP_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"  # also the API schema's pattern
BACKUP_ID_RE = re.compile(BACKUP_ID_PATTERN.strip("^$"))
_SHA3_RE = r"^0x[0-9a-f]{64}$"
_TIME_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$"


class FileType(StrEnum):
    """Role of a file inside a backup."""

    DATABASE = "database"
    POLICY_STORE = "policy_store"
    KEY_METADATA = "key_metadata"
    KEYRING = "keyring"
    CONFIGURATION = "configuration"
    AUDIT_LOG = "audit_log"
    LISTS = "lists"
    POSTGRESQL_TABLE = "postgresql_table"  # one table of the PostgreSQL state, CSV with a header line


class Compression(StrEnum):
    GZIP = "gzip"


class Encryption(StrEnum):
    NONE = "none"
    AES_256_GCM = "aes-256-gcm"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def check_relative_path(path: str) -> str:
    """A safe archive path: relative POSIX, no ``..``/empty parts, no backslash or NUL.

    Raises :class:`InvalidInputError` naming the path.
    """
    parts = path.split("/")
    bad = (
        not path
        or path.startswith("/")
        or "\\" in path
        or "\x00" in path
        or any(p in ("", ".", "..") for p in parts)
    )
    if bad:
        raise InvalidInputError("unsafe archive path", field="path", found=path[:200])
    return path


class SqliteInfo(_Frozen):
    """What a SQLite snapshot looked like when it was taken."""

    tables: tuple[str, ...]
    user_version: int
    page_size: int


class ManifestFile(_Frozen):
    path: str
    sha3_256: str = Field(pattern=_SHA3_RE)
    size_bytes: int = Field(ge=0)
    type: FileType
    sqlite: SqliteInfo | None = None

    @field_validator("path")
    @classmethod
    def _safe_path(cls, value: str) -> str:
        return check_relative_path(value)


class ArchiveInfo(_Frozen):
    """The stored archive object: its name beside the manifest, digest and size of its exact bytes."""

    name: str
    sha3_256: str = Field(pattern=_SHA3_RE)
    size_bytes: int = Field(ge=0)


class ManifestSignature(_Frozen):
    kid: str = Field(pattern=r"^[0-9a-f]{32}$")
    alg: Literal["Ed25519"] = ALG
    sig: str


class PgSnapshotInfo(_Frozen):
    """What a PostgreSQL backup's one snapshot saw: server, each component's schema version and the
    sequences' values (ids at or below them were handed out; a restore never hands them out again)."""

    server_version: str
    schema_versions: dict[str, int]
    sequences: dict[str, int]


class BackupManifest(_Frozen):
    version: Literal["backup.manifest.v1"] = MANIFEST_VERSION
    created_at: str = Field(pattern=_TIME_RE)
    created_by: str
    backup_id: str
    system_version: str
    keyring_version: int | None = None
    files: tuple[ManifestFile, ...]
    total_files: int
    total_size_bytes: int
    compression: Compression = Compression.GZIP
    encryption: Encryption = Encryption.NONE
    archive: ArchiveInfo
    engine: Engine | None = None  # absent: the SQLite data dir (every backup made before PostgreSQL mode)
    postgresql: PgSnapshotInfo | None = None  # with engine postgresql only
    signature: ManifestSignature | None = None

    @field_validator("backup_id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        return check_backup_id(value)

    @model_validator(mode="after")
    def _totals(self) -> BackupManifest:
        paths = [f.path for f in self.files]
        if len(set(paths)) != len(paths):
            raise ValueError("duplicate file path in manifest")
        if self.total_files != len(self.files):
            raise ValueError("total_files does not match files")
        if self.total_size_bytes != sum(f.size_bytes for f in self.files):
            raise ValueError("total_size_bytes does not match files")
        if (self.engine is Engine.POSTGRESQL) != (self.postgresql is not None):
            raise ValueError("postgresql snapshot info goes with engine postgresql, and only there")
        return self


def backup_engine(manifest: BackupManifest) -> Engine:
    """Which storage engine's state ``manifest`` backs up."""
    return manifest.engine or Engine.SQLITE


def require_engine(manifest: BackupManifest, engine: Engine) -> None:
    """Refuse to restore a backup of one engine's state into the other (no cross-engine restore).

    Raises :class:`ConfigError` ``restore_engine_mismatch`` naming both engines."""
    found = backup_engine(manifest)
    if found is not engine:
        raise ConfigError(
            f"backup {manifest.backup_id} holds the {_ENGINE_NAMES[found]} state but this node keeps its "
            f"state in {_ENGINE_NAMES[engine]}; restore it with CAP_DATABASE_URL "
            + ("pointing at a PostgreSQL database" if found is Engine.POSTGRESQL else "unset (SQLite)")
            + " (cross-engine restore is not supported)",
            code="restore_engine_mismatch",
            field="engine",
            found=found.value,
            expected=engine.value,
        )


_ENGINE_NAMES: Final = {Engine.SQLITE: "SQLite files", Engine.POSTGRESQL: "PostgreSQL"}


def check_backup_id(backup_id: str) -> str:
    """Backup ids become file names and object keys. Raises :class:`InvalidInputError`."""
    if not isinstance(backup_id, str) or not BACKUP_ID_RE.fullmatch(backup_id):
        raise InvalidInputError(
            "invalid backup id", field="backup_id", expected="[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
        )
    return backup_id


def signing_bytes(manifest: BackupManifest) -> bytes:
    """The exact bytes the manifest signature covers."""
    return MANIFEST_DOMAIN + canonical_bytes(manifest.model_copy(update={"signature": None}))


def sign_manifest(manifest: BackupManifest, signer: Signer) -> BackupManifest:
    """A copy of ``manifest`` carrying an Ed25519 signature by ``signer``."""
    sig = base64.b64encode(signer.sign(signing_bytes(manifest))).decode("ascii")
    return manifest.model_copy(update={"signature": ManifestSignature(kid=signer.kid, sig=sig)})


def manifest_bytes(manifest: BackupManifest) -> bytes:
    """The stored form: canonical JSON bytes including the signature."""
    return canonical_bytes(manifest)


def parse_manifest(data: bytes, *, source: str = "manifest") -> BackupManifest:
    """Parse stored manifest bytes. Raises :class:`IntegrityError` on anything but canonical v1 JSON."""
    try:
        manifest = BackupManifest.model_validate(json.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, ValidationError, InvalidInputError) as exc:
        raise IntegrityError(f"backup manifest is unreadable: {_first_error(exc)}", file=source) from exc
    if canonical_bytes(manifest) != data:
        raise IntegrityError("backup manifest is not in canonical form", file=source)
    return manifest


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return str(exc)[:200]


class KeyStatus(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"
    REVOKED = "revoked"
    PENDING = "pending"


class TrustedKey(_Frozen):
    """A public key the verifier accepts signatures from (from the keyring)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    kid: str
    public_key: str
    status: KeyStatus = KeyStatus.ACTIVE
    valid_from: str | None = None
    valid_to: str | None = None
    retired_at: str | None = None


class KeyringView(_Frozen):
    """The parts of ``keyring.json`` (cap-keyring.v1) that backup and restore need."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    version: int = Field(ge=0)
    keys: tuple[TrustedKey, ...] = ()


def parse_keyring(data: bytes, *, source: str = "keyring.json") -> KeyringView:
    """Read a keyring and check every kid against its public key.

    Raises :class:`InvalidInputError` on bad JSON or shape, :class:`IntegrityError` on a kid mismatch.
    """
    try:
        view = KeyringView.model_validate(json.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, ValidationError) as exc:
        raise InvalidInputError(f"keyring is unreadable: {_first_error(exc)}", file=source) from exc
    for key in view.keys:
        if derive_kid(key.public_key) != key.kid:
            raise IntegrityError("keyring kid does not match its public key", file=source, field=key.kid)
    return view


class SignatureStatus(StrEnum):
    OK = "ok"
    MISSING = "missing"
    UNKNOWN_KID = "unknown_kid"
    REVOKED = "revoked"
    NOT_ACTIVE = "key_not_active"
    INVALID = "invalid"


class SignatureCheck(_Frozen):
    status: SignatureStatus
    kid: str | None = None
    message: str


def judge_signature(
    keys: tuple[TrustedKey, ...], kid: str, sig_b64: str, data: bytes, made_at: str
) -> tuple[SignatureStatus, str | None]:
    """Whether a signature by ``kid`` over ``data``, made at ``made_at``, is acceptable under ``keys``: the
    status and, unless OK, why not. One rule for every signed thing a restore trusts (backup manifests,
    state snapshots): a known key, not revoked, active when it signed, and a signature that verifies."""
    key = next((k for k in keys if k.kid == kid), None)
    if key is None:
        return SignatureStatus.UNKNOWN_KID, "unknown signing kid"
    if key.status is KeyStatus.REVOKED:
        return SignatureStatus.REVOKED, "signing key is revoked"
    inactive = _inactive_when_signed(key, made_at)
    if inactive is not None:
        return SignatureStatus.NOT_ACTIVE, inactive
    try:
        raw = base64.b64decode(sig_b64, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not verify_signature(key.public_key, raw, data):
        return SignatureStatus.INVALID, "signature does not verify"
    return SignatureStatus.OK, None


def check_manifest_signature(manifest: BackupManifest, keys: tuple[TrustedKey, ...]) -> SignatureCheck:
    """Check the manifest's signature against ``keys`` without raising."""
    sig = manifest.signature
    if sig is None:
        return SignatureCheck(status=SignatureStatus.MISSING, message="manifest is not signed")
    status, problem = judge_signature(keys, sig.kid, sig.sig, signing_bytes(manifest), manifest.created_at)
    return SignatureCheck(status=status, kid=sig.kid, message=problem or "manifest signature valid")


def _inactive_when_signed(key: TrustedKey, created_at: str) -> str | None:
    """Why ``key`` could not have signed at ``created_at``, or None if it was active then.

    A pending key never signs; a retired key signed only before its ``retired_at`` (unknown: refused);
    any key only inside its ``valid_from`` .. ``valid_to`` window where the keyring states one.
    """
    when = _instant(created_at)
    if key.status is KeyStatus.PENDING:
        return "signing key is pending (it never signs)"
    if key.status is KeyStatus.RETIRED and (key.retired_at is None or when >= _instant(key.retired_at)):
        retired = key.retired_at or "date unknown"
        return f"signing key was retired ({retired}) when the manifest was made ({created_at})"
    if key.valid_from is not None and when < _instant(key.valid_from):
        return f"signing key is not valid before {key.valid_from}; the manifest was made {created_at}"
    if key.valid_to is not None and when > _instant(key.valid_to):
        return f"signing key expired at {key.valid_to}; the manifest was made {created_at}"
    return None


def _instant(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise IntegrityError("keyring or manifest time is not an ISO 8601 instant", found=text[:40]) from exc


def verify_manifest_signature(manifest: BackupManifest, keys: tuple[TrustedKey, ...]) -> SignatureCheck:
    """Like :func:`check_manifest_signature` but raises :class:`VerificationError` unless it is ok."""
    result = check_manifest_signature(manifest, keys)
    if result.status is not SignatureStatus.OK:
        raise VerificationError(
            f"backup manifest signature: {result.message}",
            code="backup_signature_invalid",
            kid=result.kid,
            status=result.status.value,
        )
    return result
