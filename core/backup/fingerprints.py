"""Fingerprints of the private keys in the key directory, and a search for them in any encoding.

Header patterns (``-----BEGIN PRIVATE KEY-----``) miss a key written as DER, as hex, as a PEM body without
its header lines or as base64 under a neutral field name. So the backup scan also loads every private key
in ``keys/`` (in memory only: never logged, never stored) and searches each file for its secret bytes: raw,
as hex (lower or upper case) and as base64 (standard or URL-safe, at each of the three byte alignments a
secret can have inside a longer encoded run such as a PEM body, wrapped or not).

The encodings are computed once from the secrets and searched for as substrings, so the cost is a few
linear passes per file (about 2 ms per MB), not a decode of every hex or base64-looking run (which took
285 s for a 1 GB registry). Line breaks, raw or JSON-escaped, are removed before the encoded forms are
searched. Files are searched in bounded pieces that overlap by more than any encoding of a secret, so
nothing is missed at a piece boundary.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

PIECE = 1 << 20
OVERLAP = 8 * 1024  # > the longest encoding of a secret (a 4096-bit RSA exponent in hex with line breaks)
_LINE_BREAKS = re.compile(rb"(?:\\[rn]|[\r\n])")  # a line break, raw or JSON-escaped
_URLSAFE = bytes.maketrans(b"-_", b"+/")
_PEM_BLOCK = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(.+?)-----END", re.S)


class KeyFingerprints:
    """The secret byte strings of some private keys. ``repr`` shows only how many."""

    __slots__ = ("_base64", "_hex", "_secrets")

    def __init__(self, secrets: Iterable[bytes]) -> None:
        found = {s for s in secrets if len(s) >= 16}
        # a secret holding another (a DER body holds its private scalar) is found through the one it holds
        self._secrets = tuple(s for s in found if not any(o != s and o in s for o in found))
        self._hex = tuple(f for s in self._secrets for f in (s.hex().encode(), s.hex().upper().encode()))
        self._base64 = tuple(core for s in self._secrets for core in _base64_cores(s))

    def __repr__(self) -> str:
        return f"KeyFingerprints({len(self._secrets)} secrets)"

    def __bool__(self) -> bool:
        return bool(self._secrets)

    @classmethod
    def from_key_dir(cls, keys_dir: Path) -> KeyFingerprints:
        """Secrets of every ``*.pem`` private key under ``keys_dir`` (read, never copied anywhere)."""
        found: list[bytes] = []
        if keys_dir.is_dir():
            for pem in sorted(keys_dir.glob("*.pem")):
                if pem.is_file() and not pem.is_symlink():
                    found += secrets_of_pem(pem.read_bytes())
        return cls(found)

    def encoding_in(self, data: bytes) -> str | None:
        """How a secret appears in ``data`` (``raw``, ``hex``, ``base64``), or None."""
        if any(secret in data for secret in self._secrets):
            return "raw"
        flat = data.translate(_URLSAFE, b"\r\n")  # one pass: raw breaks out, URL-safe base64 made standard
        if b"\\" in flat:  # JSON-escaped breaks; one byte is found fast, two (\\n) cost a slow scan
            flat = flat.replace(b"\\n", b"").replace(b"\\r", b"")
        if any(form in flat for form in self._hex):
            return "hex"
        if any(core in flat for core in self._base64):
            return "base64"
        return None

    def encoding_in_file(self, path: Path) -> str | None:
        """:meth:`encoding_in` over a file read in overlapping pieces (bounded memory)."""
        with open(path, "rb") as fh:
            tail = b""
            while piece := fh.read(PIECE):
                found = self.encoding_in(tail + piece)
                if found:
                    return found
                tail = (tail + piece)[-OVERLAP:]
        return None


def _base64_cores(secret: bytes) -> list[bytes]:
    """The base64 characters that depend on ``secret`` alone, for each alignment (0, 1 or 2 bytes of
    something else before it in its 3-byte group): the first group is dropped when it mixes in those
    bytes, the last when the bytes after the secret complete it."""
    cores = []
    for before in range(3):
        encoded = base64.b64encode(bytes(before) + secret)
        end = len(encoded) - (4 if (before + len(secret)) % 3 else 0)
        cores.append(encoded[4 if before else 0 : end])
    return cores


def secrets_of_pem(data: bytes) -> list[bytes]:
    """The secret bytes of each private key in PEM ``data``: the key's private scalar(s) and its DER body.

    A block that cannot be loaded (encrypted, unknown type) still contributes its DER body.
    """
    out: list[bytes] = []
    for body in _PEM_BLOCK.findall(data):
        der = _b64(_LINE_BREAKS.sub(b"", body).strip())
        out.append(der)
        try:
            key = serialization.load_der_private_key(der, password=None)
        except (ValueError, TypeError):
            continue
        out += _private_values(key)
    return out


def _private_values(key: object) -> list[bytes]:
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        raw = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return [raw]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        value = key.private_numbers().private_value
        return [value.to_bytes((key.curve.key_size + 7) // 8, "big")]
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.private_numbers()
        return [n.to_bytes((n.bit_length() + 7) // 8, "big") for n in (numbers.d, numbers.p, numbers.q)]
    return []


def _b64(text: bytes) -> bytes:
    usable = text.rstrip(b"=")
    usable = usable[: len(usable) // 4 * 4] if len(usable) % 4 == 1 else usable
    try:
        return base64.b64decode(usable + b"=" * (-len(usable) % 4))
    except (binascii.Error, ValueError):
        return b""
