"""The development token issuer: one ES256 key and its JWKS under ``<data>/dev-issuer/``.

Only for ``CAP_ENV=dev`` (the embedded default): ``cap serve`` creates it when no JWKS is configured and the
API trusts its ``jwks.json``; ``cap token`` mints tokens with it. The private key file is mode 0600 and never
leaves this directory. Anywhere else the issuer is refused with :class:`ConfigError` ``dev_issuer_refused``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from core.auth import Scope
from core.errors import ConfigError, InvalidInputError
from core.fsio import atomic_write
from core.settings import Settings

DEV_ISSUER = "cap-dev-issuer"
DEV_AUDIENCE = "cap-verifier"
DEV_ENV = "dev"
PRIVATE_MODE = 0o600
MAX_TTL_S = 24 * 3600  # the API refuses longer-lived tokens (core.auth.DEFAULT_MAX_LIFETIME_S)


def require_dev(settings: Settings) -> None:
    """Raises :class:`ConfigError` unless the environment is ``dev``."""
    if settings.env != DEV_ENV:
        raise ConfigError(
            "the development token issuer is only available with CAP_ENV=dev",
            code="dev_issuer_refused",
            field="CAP_ENV",
            found=settings.env,
            expected=DEV_ENV,
        )


class DevIssuer:
    """The issuer's files: ``private.pem`` (0600) and ``jwks.json`` (public)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def private_key_path(self) -> Path:
        return self.directory / "private.pem"

    @property
    def jwks_path(self) -> Path:
        return self.directory / "jwks.json"

    @classmethod
    def for_settings(cls, settings: Settings) -> DevIssuer:
        require_dev(settings)
        return cls(settings.layout.dev_issuer_dir)

    def exists(self) -> bool:
        return self.private_key_path.exists() and self.jwks_path.exists()

    def ensure(self) -> DevIssuer:
        """Create the key and JWKS if missing (an existing key is kept)."""
        if not self.exists():
            self.rotate()
        return self

    def rotate(self) -> str:
        """A fresh key replaces the old one; returns its ``kid``."""
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self.private_key_path, pem, mode=PRIVATE_MODE)
        jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": _kid(key), "alg": "ES256", "use": "sig"})
        atomic_write(self.jwks_path, json.dumps({"keys": [jwk]}, indent=2).encode() + b"\n")
        return str(jwk["kid"])

    def mint(self, scopes: Iterable[str], *, ttl: int, now: int, subject: str = "dev-user") -> str:
        """A signed ES256 token. Raises :class:`ConfigError` for a bad TTL or a missing issuer,
        :class:`InvalidInputError` for a scope the API does not know."""
        scopes = list(scopes)
        if not 0 < ttl <= MAX_TTL_S:
            raise ConfigError(
                "token TTL out of range", field="ttl", found=ttl, expected=f"1..{MAX_TTL_S} seconds"
            )
        unknown = sorted(set(scopes) - {s.value for s in Scope})
        if unknown:
            raise InvalidInputError(
                f"unknown scope {unknown[0]!r}",
                field="scope",
                found=" ".join(unknown),
                expected="some of: " + " ".join(s.value for s in Scope),
            )
        if not self.exists():
            raise ConfigError("no development issuer yet: run `cap serve` once", file=str(self.directory))
        key = serialization.load_pem_private_key(self.private_key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError("development issuer key is not an EC key", file=str(self.private_key_path))
        claims = {
            "iss": DEV_ISSUER,
            "aud": DEV_AUDIENCE,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "scope": " ".join(scopes),
        }
        return jwt.encode(claims, key, algorithm="ES256", headers={"kid": _kid(key)})


def _kid(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "dev-" + hashlib.sha256(der).hexdigest()[:16]
