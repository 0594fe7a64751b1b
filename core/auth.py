"""OAuth2 resource-server rules: bearer tokens, JWKS key sets, scopes. No web framework here.

Owns the 16 scopes of the original API (``admin:full`` implies every other), :class:`Principal`,
:class:`JwksCache` (keys from a URL or a file, cached for a TTL, re-fetched on an unknown ``kid`` at most
once per cool-down) and :class:`TokenValidator` (RS256/ES256 only; ``iss``, ``aud``, ``exp``, ``nbf``
checked with a small leeway; numeric dates only as numbers; ``exp`` at most ``max_lifetime`` (24 h) after
``iat`` and after now; an ``Authorization`` header over 8 KiB refused unparsed; no token text echoed in
errors). Every rejection is an :class:`AuthError` whose ``reason`` is a stable label (metrics
``cap_api_auth_failures_total{reason}``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
import jwt
from pydantic import BaseModel, ConfigDict

from core.errors import CapError

ALLOWED_ALGORITHMS = frozenset({"RS256", "ES256"})
DEFAULT_LEEWAY_S = 30
DEFAULT_JWKS_TTL_S = 300.0
DEFAULT_JWKS_COOLDOWN_S = 30.0
DEFAULT_MAX_LIFETIME_S = 24 * 3600
MAX_TOKEN_CHARS = 8 * 1024  # a real access token is under 2 KB; anything longer is refused unparsed
NUMERIC_DATE_CLAIMS = ("exp", "nbf", "iat")
_TOKEN_CACHE_MAX = 4096


class Scope(StrEnum):
    VERIFY_RUN = "verify:run"
    VERIFY_ADMIN = "verify:admin"
    POLICY_COMPILE = "policy:compile"
    POLICY_READ = "policy:read"
    POLICY_WRITE = "policy:write"
    POLICY_DELETE = "policy:delete"
    BACKUP_CREATE = "backup:create"
    BACKUP_READ = "backup:read"
    BACKUP_RESTORE = "backup:restore"
    BACKUP_DELETE = "backup:delete"
    KEYS_ROTATE = "keys:rotate"
    KEYS_READ = "keys:read"
    KEYS_REVOKE = "keys:revoke"
    METRICS_READ = "metrics:read"
    METRICS_WRITE = "metrics:write"
    ADMIN_FULL = "admin:full"


SCOPE_DESCRIPTIONS: dict[str, str] = {
    Scope.VERIFY_RUN: "Verify proofs and evaluate policies over a context",
    Scope.VERIFY_ADMIN: "Verification options: enforcement mode, drift detection",
    Scope.POLICY_COMPILE: "Compile and lint policies",
    Scope.POLICY_READ: "Read stored policies",
    Scope.POLICY_WRITE: "Persist compiled policies",
    Scope.POLICY_DELETE: "Delete stored policies",
    Scope.BACKUP_CREATE: "Start backups",
    Scope.BACKUP_READ: "List backups",
    Scope.BACKUP_RESTORE: "Start restores",
    Scope.BACKUP_DELETE: "Delete backups",
    Scope.KEYS_ROTATE: "Start signing-key rotation",
    Scope.KEYS_READ: "Read the keyring",
    Scope.KEYS_REVOKE: "Revoke signing keys",
    Scope.METRICS_READ: "Read Prometheus metrics",
    Scope.METRICS_WRITE: "Reserved (original scope list)",
    Scope.ADMIN_FULL: "Every scope",
}


class AuthReason(StrEnum):
    """Why a credential was rejected (a metrics label, so a closed set)."""

    MISSING = "missing_token"
    SCHEME = "wrong_scheme"
    MALFORMED = "malformed"
    ALGORITHM = "algorithm_not_allowed"
    NO_KID = "missing_kid"
    UNKNOWN_KID = "unknown_kid"
    KEY_MISMATCH = "key_algorithm_mismatch"
    SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    ISSUER = "wrong_issuer"
    AUDIENCE = "wrong_audience"
    MISSING_CLAIM = "missing_claim"
    CLAIM_TYPE = "claim_not_numeric"
    LIFETIME = "lifetime_too_long"
    TOO_LARGE = "token_too_large"
    SCOPE = "insufficient_scope"


class AuthError(CapError):
    """A bearer token is missing or invalid (HTTP 401, ``error="invalid_token"``)."""

    code = "invalid_token"

    def __init__(self, message: str, reason: AuthReason, **details: Any) -> None:
        super().__init__(message, reason=reason.value, **details)
        self.reason = reason


class InsufficientScopeError(CapError):
    """A valid token lacks the scope a route needs (HTTP 403)."""

    code = "insufficient_scope"


class JwksUnavailableError(CapError):
    """No key set could be loaded at all (HTTP 503); a stale set is used rather than raising."""

    code = "jwks_unavailable"


class Principal(BaseModel):
    """The authenticated caller."""

    model_config = ConfigDict(frozen=True)
    subject: str
    scopes: frozenset[str]
    expires_at: int

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or Scope.ADMIN_FULL in self.scopes

    def require(self, *scopes: str) -> None:
        """Raises :class:`InsufficientScopeError` naming the first missing scope."""
        for scope in scopes:
            if not self.allows(scope):
                raise InsufficientScopeError(f"token lacks scope {scope}", required=scope)


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    """Scopes from ``scope`` (space-separated) or ``scp`` (list or space-separated string)."""
    raw = claims.get("scope", claims.get("scp", ""))
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list):
        return frozenset(s for s in raw if isinstance(s, str))
    return frozenset()


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer …`` header. Raises :class:`AuthError`."""
    if not authorization:
        raise AuthError("no bearer token", AuthReason.MISSING)
    if len(authorization) > MAX_TOKEN_CHARS:
        raise AuthError("authorization header is too long", AuthReason.TOO_LARGE, limit=MAX_TOKEN_CHARS)
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("authorization scheme must be Bearer", AuthReason.SCHEME)
    return token.strip()


# --- key sets ---------------------------------------------------------------------------------------------


def url_fetcher(url: str, *, timeout: float = 5.0) -> Callable[[], bytes]:
    """A JWKS fetcher over HTTP(S). Its errors are :class:`JwksUnavailableError`."""

    def fetch() -> bytes:
        try:
            response = httpx.get(url, timeout=timeout, follow_redirects=False)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise JwksUnavailableError(f"cannot fetch JWKS: {exc}", url=url) from exc
        return response.content

    return fetch


def file_fetcher(path: str | Path) -> Callable[[], bytes]:
    def fetch() -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise JwksUnavailableError(f"cannot read JWKS file: {exc.strerror}", file=str(path)) from exc

    return fetch


def parse_jwks(data: bytes, source: str) -> dict[str, jwt.PyJWK]:
    """The usable keys of a JWKS document by ``kid`` (keys without a ``kid`` or algorithm are skipped)."""
    try:
        doc = json.loads(data)
        keys = doc["keys"]
    except (ValueError, KeyError, TypeError) as exc:
        raise JwksUnavailableError("JWKS is not a JSON key set", source=source) from exc
    out: dict[str, jwt.PyJWK] = {}
    for item in keys if isinstance(keys, list) else []:
        try:
            jwk = jwt.PyJWK(item)
        except (jwt.PyJWKError, jwt.InvalidKeyError, KeyError, TypeError, ValueError):
            continue
        if jwk.key_id and jwk.algorithm_name in ALLOWED_ALGORITHMS:
            out[jwk.key_id] = jwk
    return out


class JwksCache:
    """Keys by ``kid``: fetched on first use, again after ``ttl``, and on an unknown ``kid`` at most once per
    ``cooldown``. A failed re-fetch keeps the last good set. Thread-safe."""

    def __init__(
        self,
        fetch: Callable[[], bytes],
        *,
        source: str,
        ttl: float = DEFAULT_JWKS_TTL_S,
        cooldown: float = DEFAULT_JWKS_COOLDOWN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch, self._source, self._ttl, self._cooldown, self._clock = (
            fetch,
            source,
            ttl,
            cooldown,
            clock,
        )
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] | None = None
        self._fetched_at = 0.0
        self._last_attempt: float | None = None
        self.generation = 0
        self.fetches = 0

    @property
    def source(self) -> str:
        return self._source

    def key_for(self, kid: str) -> jwt.PyJWK:
        """The key for ``kid``. Raises :class:`AuthError` (unknown kid) or :class:`JwksUnavailableError`."""
        with self._lock:
            now = self._clock()
            if self._keys is None or now - self._fetched_at >= self._ttl:
                self._load(now, must=self._keys is None)
            keys = self._keys or {}
            if kid not in keys and self._may_retry(now):
                self._load(now, must=False)
                keys = self._keys or {}
        if kid not in keys:
            raise AuthError("token signed by an unknown key", AuthReason.UNKNOWN_KID)
        return keys[kid]

    def ready(self) -> bool:
        """True if a key set is held or can be loaded now."""
        try:
            with self._lock:
                if self._keys is None:
                    self._load(self._clock(), must=True)
        except JwksUnavailableError:
            return False
        return True

    def _may_retry(self, now: float) -> bool:
        return self._last_attempt is None or now - self._last_attempt >= self._cooldown

    def _load(self, now: float, *, must: bool) -> None:
        self._last_attempt = now
        try:
            self.fetches += 1
            keys = parse_jwks(self._fetch(), self._source)
        except JwksUnavailableError:
            if must:
                raise
            return
        self._keys, self._fetched_at = keys, now
        self.generation += 1


# --- tokens -----------------------------------------------------------------------------------------------

_DECODE_ERRORS: tuple[tuple[type[Exception], AuthReason, str], ...] = (
    (jwt.ExpiredSignatureError, AuthReason.EXPIRED, "token has expired"),
    (jwt.ImmatureSignatureError, AuthReason.NOT_YET_VALID, "token is not valid yet"),
    (jwt.InvalidIssuerError, AuthReason.ISSUER, "token issuer is not accepted"),
    (jwt.InvalidAudienceError, AuthReason.AUDIENCE, "token audience is not accepted"),
    (jwt.MissingRequiredClaimError, AuthReason.MISSING_CLAIM, "token lacks a required claim"),
    (jwt.InvalidSignatureError, AuthReason.SIGNATURE, "token signature is invalid"),
)


class TokenValidator:
    """Checks bearer JWTs against one issuer, audience and key set.

    Accepted tokens are remembered (by their exact text, until ``exp`` and at most 60 s, cleared whenever the
    key set changes), so a client re-sending the same token costs one dictionary lookup.
    """

    def __init__(
        self,
        keys: JwksCache,
        *,
        issuer: str,
        audience: str,
        leeway: int = DEFAULT_LEEWAY_S,
        max_lifetime: int = DEFAULT_MAX_LIFETIME_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys, self.issuer, self.audience, self.leeway, self._clock = (
            keys,
            issuer,
            audience,
            leeway,
            clock,
        )
        self.max_lifetime = max_lifetime
        self._accepted: dict[str, tuple[Principal, float]] = {}
        self._generation = -1

    def validate(self, token: str) -> Principal:
        """The caller behind ``token``. Raises :class:`AuthError` or :class:`JwksUnavailableError`."""
        cached = self._accepted.get(token)
        now = self._clock()
        if cached is not None and now < cached[1] and self._generation == self.keys.generation:
            return cached[0]
        principal = self._decode(token)
        self._remember(token, principal, now)
        return principal

    def _decode(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise AuthError("token is not a JWT", AuthReason.MALFORMED) from exc
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise AuthError("token algorithm is not allowed", AuthReason.ALGORITHM, expected="RS256 or ES256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("token header has no kid", AuthReason.NO_KID)
        jwk = self.keys.key_for(kid)
        if jwk.algorithm_name != alg:
            raise AuthError("token algorithm does not match its key", AuthReason.KEY_MISMATCH)
        claims = self._claims(token, jwk, alg)
        self._check_dates(claims)
        return Principal(
            subject=str(claims.get("sub", "")), scopes=scopes_of(claims), expires_at=int(claims["exp"])
        )

    def _check_dates(self, claims: Mapping[str, Any]) -> None:
        """Numeric dates are JSON numbers (not strings, not booleans); ``exp`` is at most ``max_lifetime``
        after ``iat`` and after now (year-9999 tokens never expire in practice). Raises :class:`AuthError`."""
        for name in NUMERIC_DATE_CLAIMS:
            value = claims.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise AuthError(f"token claim {name} must be a number", AuthReason.CLAIM_TYPE, claim=name)
        exp, iat = claims["exp"], claims.get("iat")
        if exp - self._clock() > self.max_lifetime + self.leeway or (
            iat is not None and exp - iat > self.max_lifetime
        ):
            raise AuthError(
                "token lifetime exceeds the maximum", AuthReason.LIFETIME, max_seconds=self.max_lifetime
            )

    def _claims(self, token: str, jwk: jwt.PyJWK, alg: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                jwk.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.InvalidTokenError as exc:
            for kind, reason, message in _DECODE_ERRORS:
                if isinstance(exc, kind):
                    raise AuthError(message, reason) from exc
            raise AuthError("token is invalid", AuthReason.MALFORMED) from exc

    def _remember(self, token: str, principal: Principal, now: float) -> None:
        if self._generation != self.keys.generation or len(self._accepted) >= _TOKEN_CACHE_MAX:
            self._accepted.clear()
            self._generation = self.keys.generation
        self._accepted[token] = (principal, min(float(principal.expires_at), now + 60.0))
