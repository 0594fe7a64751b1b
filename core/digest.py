"""Digests and their text forms.

``0x`` + 64 hex is used for BLAKE3-256 commitments and v1 policy hashes (SHA3-256);
``sha3-256:`` + hex for v2 policy hashes, IR hashes and new formats; ``blake3:`` + hex where a
new format wants the algorithm named. Compare digests with :func:`digests_equal` (constant time).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum

import blake3

from core.errors import InvalidInputError

_HEX64 = re.compile(r"[0-9a-f]{64}")


class DigestForm(StrEnum):
    HEX = "0x"
    SHA3 = "sha3-256:"
    BLAKE3 = "blake3:"


@dataclass(frozen=True, slots=True)
class Digest:
    """A 32-byte digest with the text form it is written in."""

    raw: bytes
    form: DigestForm = DigestForm.HEX

    def __str__(self) -> str:
        return self.form.value + self.raw.hex()

    @property
    def text(self) -> str:
        return str(self)

    @classmethod
    def parse(cls, text: str, *, field: str = "digest") -> Digest:
        """Parse any accepted text form. Raises :class:`InvalidInputError` naming ``field``."""
        if not isinstance(text, str):
            raise InvalidInputError("digest must be a string", field=field, expected="0x + 64 hex")
        for form in (DigestForm.SHA3, DigestForm.BLAKE3, DigestForm.HEX):
            if text.startswith(form.value):
                body = text[len(form.value) :]
                if _HEX64.fullmatch(body):
                    return cls(bytes.fromhex(body), form)
        raise InvalidInputError(
            f"not a digest: {text[:80]!r}",
            field=field,
            expected="0x, sha3-256: or blake3: + 64 lowercase hex",
        )


def blake3_raw(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


def blake3_hex(data: bytes) -> str:
    """``0x`` + BLAKE3-256 hex of ``data``."""
    return "0x" + blake3.blake3(data).hexdigest()


def sha3_raw(data: bytes) -> bytes:
    return hashlib.sha3_256(data).digest()


def sha3_hex(data: bytes) -> str:
    """``0x`` + SHA3-256 hex (v1 policy hashes, original file hashes)."""
    return "0x" + hashlib.sha3_256(data).hexdigest()


def sha3_prefixed(data: bytes) -> str:
    """``sha3-256:`` + SHA3-256 hex (v2 policy hashes, IR hashes, new formats)."""
    return "sha3-256:" + hashlib.sha3_256(data).hexdigest()


def digests_equal(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time comparison of two digests in the same representation."""
    if isinstance(a, str):
        a = a.encode()
    if isinstance(b, str):
        b = b.encode()
    return hmac.compare_digest(a, b)
