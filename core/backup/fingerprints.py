"""Fingerprints of the private keys in the key directory, and a search for them in any encoding.

Header patterns (``-----BEGIN PRIVATE KEY-----``) miss a key written as DER, as hex, as a PEM body without
its header lines or as base64 under a neutral field name. So the backup scan also loads every private key
in ``keys/`` (in memory only: never logged, never stored), and looks for its secret bytes in each file's
raw bytes and inside every decoded hex or base64 run (PEM bodies included: a DER key holds the secret).
Files are searched in bounded pieces that overlap by more than any encoding of a secret, so nothing is
missed at a piece boundary.
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
_HEX_RUN = re.compile(rb"[0-9a-fA-F]{32,}")
_BREAK = rb"(?:\\[rn]|[\r\n])"  # a line break, raw or JSON-escaped
_B64_RUN = re.compile(rb"(?:[A-Za-z0-9+/_-]|" + _BREAK + rb"){24,}")
_LINE_BREAKS = re.compile(_BREAK)
_URLSAFE = bytes.maketrans(b"-_", b"+/")
_PEM_BLOCK = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(.+?)-----END", re.S)


class KeyFingerprints:
    """The secret byte strings of some private keys. ``repr`` shows only how many."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[bytes]) -> None:
        self._secrets = tuple(s for s in set(secrets) if len(s) >= 16)

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
        if self._contains(data):
            return "raw"
        for run in _HEX_RUN.findall(data):
            if any(self._contains(binascii.unhexlify(run[o : o + (len(run) - o) // 2 * 2])) for o in (0, 1)):
                return "hex"
        for run in _B64_RUN.findall(data):
            text = _LINE_BREAKS.sub(b"", run).translate(_URLSAFE)
            if any(self._contains(_b64(text[o:])) for o in range(4)):
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

    def _contains(self, data: bytes) -> bool:
        return any(secret in data for secret in self._secrets)


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
