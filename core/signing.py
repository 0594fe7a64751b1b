"""Ed25519 signing primitives and the KID rule.

KID = lowercase hex of the first 16 bytes of BLAKE3(ASCII of the standard-base64 public key).
A :class:`Signer` holds a private key in memory only; it is never serialised, logged or returned.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final, Protocol

import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.errors import InvalidInputError

ALG: Final = "Ed25519"


def derive_kid(public_key_b64: str) -> str:
    """The 32-hex-character key id of a base64 public key."""
    return blake3.blake3(public_key_b64.encode("ascii")).digest()[:16].hex()


def public_key_b64(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def load_public_key(b64: str, *, field: str = "public_key") -> Ed25519PublicKey:
    """Parse a standard-base64 raw 32-byte Ed25519 public key. Raises :class:`InvalidInputError`."""
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError("public key is not valid base64", field=field) from exc
    if len(raw) != 32:
        raise InvalidInputError("public key must be 32 bytes", field=field, found=len(raw))
    return Ed25519PublicKey.from_public_bytes(raw)


class Signer(Protocol):
    """Anything that signs with an Ed25519 key it does not reveal."""

    @property
    def kid(self) -> str: ...

    @property
    def public_key_b64(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


class Ed25519Signer:
    """An in-memory Ed25519 signer. ``repr`` never shows key material."""

    __slots__ = ("_key", "_kid", "_pub")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._pub = public_key_b64(private_key.public_key())
        self._kid = derive_kid(self._pub)

    @classmethod
    def generate(cls) -> Ed25519Signer:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Ed25519Signer:
        """Deterministic signer from a 32-byte seed (test vectors only)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, pem: bytes, *, source: str = "private key") -> Ed25519Signer:
        """Load a PKCS#8 PEM Ed25519 key. Raises :class:`InvalidInputError` naming ``source``."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidInputError("not a PKCS#8 PEM private key", file=source) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidInputError("private key is not Ed25519", file=source)
        return cls(key)

    def to_pem(self) -> bytes:
        """PKCS#8 PEM bytes, for writing a 0600 key file and nothing else."""
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def kid(self) -> str:
        return self._kid

    @property
    def public_key_b64(self) -> str:
        return self._pub

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"Ed25519Signer(kid={self._kid})"


def verify_signature(public_key_b64_: str, signature: bytes, data: bytes) -> bool:
    """True iff ``signature`` is a valid Ed25519 signature of ``data`` by the given public key."""
    try:
        key = load_public_key(public_key_b64_)
    except InvalidInputError:
        return False
    if len(signature) != 64:
        return False
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
