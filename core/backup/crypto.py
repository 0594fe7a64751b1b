"""Backup encryption: the chunked AES-256-GCM container and data-key wrapping (master key or AWS KMS).

Container ``CAPBKENC`` v1 (docs/formats/backup.md)::

    magic "CAPBKENC" | version 0x01 | u32be header length | header (canonical JSON) | chunks...

Each chunk is AES-256-GCM of up to ``chunk_size`` plaintext bytes with nonce = base nonce XOR the
chunk index (big-endian, 12 bytes) and AAD = SHA3-256(header bytes) | u64be index | final flag (1 byte).
Flipped, reordered, dropped or appended chunks fail authentication; so does a truncation, because
the last chunk read must carry the final flag. A fresh 32-byte data key is drawn per backup and
stored only wrapped: AES-256-GCM under a master key (file or ``CAP_BACKUP_KEY_FILE``) or AWS KMS.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
import struct
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, ValidationError

from core.backup.storage import boto_errors
from core.canonical import canonical_bytes
from core.errors import ConfigError, IntegrityError

MAGIC = b"CAPBKENC"
CONTAINER_VERSION = 1
CHUNK_SIZE = 1 << 20
TAG_SIZE = 16
MAX_HEADER = 64 * 1024
KEY_FILE_ENV = "CAP_BACKUP_KEY_FILE"
_WRAP_DOMAIN = b"cap-backup-data-key.v1\n"


class WrappedKey(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    method: str
    key_id: str
    wrapped: str


class ContainerHeader(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    alg: str = "aes-256-gcm-chunked"
    backup_id: str
    chunk_size: int
    nonce_base: str
    key: WrappedKey


class KeyWrapper(Protocol):
    """Wraps and unwraps per-backup data keys; the context binds the key to one backup."""

    method: str
    key_id: str

    def wrap(self, data_key: bytes, context: str) -> bytes: ...

    def unwrap(self, wrapped: bytes, context: str) -> bytes: ...


class MasterKeyWrapper:
    """AES-256-GCM key wrapping under a 32-byte master key. ``repr`` never shows the key."""

    method = "aes-256-gcm"
    __slots__ = ("_aead", "key_id")

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ConfigError("backup master key must be 32 bytes", found=len(master_key))
        self._aead = AESGCM(master_key)
        self.key_id = hashlib.sha3_256(b"cap-backup-master-key-id\n" + master_key).hexdigest()[:32]

    def wrap(self, data_key: bytes, context: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, data_key, _WRAP_DOMAIN + context.encode())

    def unwrap(self, wrapped: bytes, context: str) -> bytes:
        if len(wrapped) < 12 + TAG_SIZE:
            raise IntegrityError("wrapped data key is too short", code="backup_key_unwrap")
        try:
            return self._aead.decrypt(wrapped[:12], wrapped[12:], _WRAP_DOMAIN + context.encode())
        except InvalidTag as exc:
            raise IntegrityError("wrapped data key does not authenticate", code="backup_key_unwrap") from exc

    def __repr__(self) -> str:
        return f"MasterKeyWrapper(key_id={self.key_id})"


def parse_master_key(data: bytes, *, source: str = "master key") -> bytes:
    """Accept 32 raw bytes, 64 hex characters or base64 of 32 bytes. Raises :class:`ConfigError`."""
    text = data.strip()
    if len(data) == 32:
        return data
    try:
        if len(text) == 64:
            return bytes.fromhex(text.decode("ascii"))
        raw = base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ConfigError("backup master key is not 32 bytes, hex or base64", file=source) from exc
    if len(raw) != 32:
        raise ConfigError("backup master key must decode to 32 bytes", file=source)
    return raw


def load_master_key(
    path: str | Path | None = None, *, env: Mapping[str, str] | None = None
) -> MasterKeyWrapper:
    """The master-key wrapper from ``path`` or ``$CAP_BACKUP_KEY_FILE``. Raises :class:`ConfigError`."""
    env = os.environ if env is None else env
    chosen = path or env.get(KEY_FILE_ENV)
    if not chosen:
        raise ConfigError(f"no backup master key: pass a key file or set {KEY_FILE_ENV}")
    try:
        data = Path(chosen).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read backup master key: {exc.strerror}", file=str(chosen)) from exc
    return MasterKeyWrapper(parse_master_key(data, source=str(chosen)))


class KmsKeyWrapper:
    """Data keys wrapped by AWS KMS ``Encrypt``/``Decrypt`` with the backup id as encryption context."""

    method = "aws-kms"

    def __init__(self, client: Any, key_id: str) -> None:
        self._client = client
        self.key_id = key_id

    def _ctx(self, context: str) -> dict[str, str]:
        return {"purpose": "cap-backup", "backup_id": context}

    def wrap(self, data_key: bytes, context: str) -> bytes:
        with boto_errors("kms:Encrypt", self.key_id):
            out = self._client.encrypt(
                KeyId=self.key_id, Plaintext=data_key, EncryptionContext=self._ctx(context)
            )
        return bytes(out["CiphertextBlob"])

    def unwrap(self, wrapped: bytes, context: str) -> bytes:
        with boto_errors("kms:Decrypt", self.key_id):
            out = self._client.decrypt(
                CiphertextBlob=wrapped, KeyId=self.key_id, EncryptionContext=self._ctx(context)
            )
        return bytes(out["Plaintext"])


def _nonce(base: bytes, index: int) -> bytes:
    return bytes(a ^ b for a, b in zip(base, index.to_bytes(12, "big"), strict=True))


class ChunkEncryptor:
    """Streaming encryptor: ``header()`` first, then ``update`` per plaintext piece, then ``finish``."""

    def __init__(self, wrapper: KeyWrapper, backup_id: str, *, chunk_size: int = CHUNK_SIZE) -> None:
        data_key = secrets.token_bytes(32)
        self._aead = AESGCM(data_key)
        self._base = secrets.token_bytes(12)
        wrapped = WrappedKey(
            method=wrapper.method,
            key_id=wrapper.key_id,
            wrapped=base64.b64encode(wrapper.wrap(data_key, backup_id)).decode(),
        )
        del data_key
        head = ContainerHeader(
            backup_id=backup_id,
            chunk_size=chunk_size,
            nonce_base=base64.b64encode(self._base).decode(),
            key=wrapped,
        )
        self._header = canonical_bytes(head)
        self._hh = hashlib.sha3_256(self._header).digest()
        self._size = chunk_size
        self._buf = bytearray()
        self._index = 0

    def header(self) -> bytes:
        return MAGIC + bytes([CONTAINER_VERSION]) + struct.pack(">I", len(self._header)) + self._header

    def _seal(self, data: bytes, final: bool) -> bytes:
        aad = self._hh + struct.pack(">QB", self._index, 1 if final else 0)
        out = self._aead.encrypt(_nonce(self._base, self._index), data, aad)
        self._index += 1
        return out

    def update(self, data: bytes) -> bytes:
        """Ciphertext for every full chunk now available (always keeps at least one byte back)."""
        self._buf += data
        out = []
        while len(self._buf) > self._size:
            out.append(self._seal(bytes(self._buf[: self._size]), False))
            del self._buf[: self._size]
        return b"".join(out)

    def finish(self) -> bytes:
        """The final chunk (possibly empty)."""
        data, self._buf = bytes(self._buf), bytearray()
        return self._seal(data, True)


def read_header(read: Callable[[int], bytes]) -> tuple[ContainerHeader, bytes]:
    """Read and parse the container header. Raises :class:`IntegrityError`."""
    fixed = _read_exact(read, len(MAGIC) + 5)
    if fixed[: len(MAGIC)] != MAGIC or fixed[len(MAGIC)] != CONTAINER_VERSION:
        raise IntegrityError("not a CAP encrypted backup container", code="backup_container_invalid")
    (length,) = struct.unpack(">I", fixed[len(MAGIC) + 1 :])
    if length > MAX_HEADER:
        raise IntegrityError("container header too large", code="backup_container_invalid")
    raw = _read_exact(read, length)
    try:
        head = ContainerHeader.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        raise IntegrityError("container header unreadable", code="backup_container_invalid") from exc
    if canonical_bytes(head) != raw or not 0 < head.chunk_size <= 64 * CHUNK_SIZE:
        raise IntegrityError("container header not canonical", code="backup_container_invalid")
    return head, raw


def _b64(text: str, length: int | None = None) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise IntegrityError("container header field is not base64", code="backup_container_invalid") from exc
    if length is not None and len(raw) != length:
        raise IntegrityError("container header field has the wrong length", code="backup_container_invalid")
    return raw


def _read_exact(read: Callable[[int], bytes], n: int) -> bytes:
    data = read(n)
    if len(data) != n:
        raise IntegrityError("encrypted backup is truncated", code="backup_truncated")
    return data


def decrypt_stream(read: Callable[[int], bytes], wrapper: KeyWrapper, backup_id: str) -> Iterator[bytes]:
    """Plaintext pieces of a container read through ``read``.

    Raises :class:`ConfigError` for a wrapper that does not match the container's key id and
    :class:`IntegrityError` on any authentication failure, truncation or trailing data.
    """
    head, raw = read_header(read)
    if head.backup_id != backup_id:
        raise IntegrityError("container belongs to another backup", code="backup_container_invalid")
    if head.key.method != wrapper.method or head.key.key_id != wrapper.key_id:
        raise ConfigError(
            "backup was encrypted under a different key", code="backup_wrong_key", expected=head.key.key_id
        )
    aead = AESGCM(wrapper.unwrap(_b64(head.key.wrapped), backup_id))
    yield from _open_chunks(
        read, aead, _b64(head.nonce_base, 12), hashlib.sha3_256(raw).digest(), head.chunk_size
    )


def _open_chunks(
    read: Callable[[int], bytes], aead: AESGCM, base: bytes, hh: bytes, size: int
) -> Iterator[bytes]:
    index, block = 0, read(size + TAG_SIZE)
    while True:
        nxt = read(size + TAG_SIZE) if len(block) == size + TAG_SIZE else b""
        final = not nxt
        if len(block) < TAG_SIZE:
            raise IntegrityError("encrypted backup is truncated", code="backup_truncated")
        try:
            yield aead.decrypt(_nonce(base, index), block, hh + struct.pack(">QB", index, 1 if final else 0))
        except InvalidTag as exc:
            raise IntegrityError(
                f"encrypted chunk {index} does not authenticate", code="backup_chunk_invalid"
            ) from exc
        if final:
            return
        index, block = index + 1, nxt
