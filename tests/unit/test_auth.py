"""core.auth without HTTP: scopes, bearer parsing, the JWKS cache's TTL and cool-down, token caching."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from core.auth import (
    AuthError,
    AuthReason,
    InsufficientScopeError,
    JwksCache,
    JwksUnavailableError,
    Principal,
    Scope,
    TokenValidator,
    bearer_token,
    parse_jwks,
    scopes_of,
)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _jwks(*pairs: tuple[str, ec.EllipticCurvePrivateKey]) -> bytes:
    keys = []
    for kid, key in pairs:
        jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
        jwk.update(kid=kid, alg="ES256")
        keys.append(jwk)
    return json.dumps({"keys": keys}).encode()


class Source:
    """A JWKS endpoint whose document the test replaces; counts fetches."""

    def __init__(self, doc: bytes) -> None:
        self.doc, self.calls, self.fail = doc, 0, False

    def __call__(self) -> bytes:
        self.calls += 1
        if self.fail:
            raise JwksUnavailableError("down")
        return self.doc


KEY_A, KEY_B = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())


def test_all_sixteen_scopes_and_admin_full_implies_all():
    assert len(Scope) == 16
    admin = Principal(subject="a", scopes=frozenset({"admin:full"}), expires_at=0)
    assert all(admin.allows(s) for s in Scope)
    reader = Principal(subject="r", scopes=frozenset({"policy:read"}), expires_at=0)
    with pytest.raises(InsufficientScopeError):
        reader.require(Scope.POLICY_COMPILE)


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        pytest.param({"scope": "a b  c"}, {"a", "b", "c"}, id="scope_string"),
        pytest.param({"scp": ["a", "b"]}, {"a", "b"}, id="scp_list"),
        pytest.param({"scp": "a b"}, {"a", "b"}, id="scp_string"),
        pytest.param({"scope": 7}, set(), id="scope_not_text"),
        pytest.param({}, set(), id="none"),
    ],
)
def test_scopes_of(claims, expected):
    assert scopes_of(claims) == expected


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        pytest.param(None, AuthReason.MISSING, id="missing"),
        pytest.param("", AuthReason.MISSING, id="empty"),
        pytest.param("Token abc", AuthReason.SCHEME, id="other_scheme"),
        pytest.param("Bearer ", AuthReason.SCHEME, id="bearer_without_token"),
    ],
)
def test_bearer_token_refusals(header, reason):
    with pytest.raises(AuthError) as info:
        bearer_token(header)
    assert info.value.reason is reason


def test_bearer_scheme_is_case_insensitive():
    assert bearer_token("bearer abc") == "abc"


def test_jwks_keeps_only_asymmetric_keys_with_kid():
    doc = json.loads(_jwks(("a", KEY_A)))
    doc["keys"].append({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"})
    doc["keys"].append({k: v for k, v in doc["keys"][0].items() if k != "kid"})
    assert set(parse_jwks(json.dumps(doc).encode(), "t")) == {"a"}


def test_unknown_kid_refetches_at_most_once_per_cooldown():
    source, clock = Source(_jwks(("a", KEY_A))), Clock()
    cache = JwksCache(source, source="t", ttl=3600, cooldown=30, clock=clock)
    cache.key_for("a")
    clock.t += 31
    source.doc = _jwks(("a", KEY_A), ("b", KEY_B))
    assert cache.key_for("b").key_id == "b"
    assert source.calls == 2
    for _ in range(5):
        with pytest.raises(AuthError):
            cache.key_for("nope")
    assert source.calls == 2  # inside the cool-down: no refetch storm
    clock.t += 31
    with pytest.raises(AuthError):
        cache.key_for("nope")
    assert source.calls == 3


def test_ttl_expiry_refetches_and_a_failed_refetch_keeps_the_old_set():
    source, clock = Source(_jwks(("a", KEY_A))), Clock()
    cache = JwksCache(source, source="t", ttl=60, cooldown=30, clock=clock)
    cache.key_for("a")
    clock.t += 61
    source.fail = True
    assert cache.key_for("a").key_id == "a"
    assert source.calls == 2


def test_no_key_set_at_all_is_unavailable():
    source = Source(b"")
    source.fail = True
    cache = JwksCache(source, source="t", clock=Clock())
    with pytest.raises(JwksUnavailableError):
        cache.key_for("a")
    assert cache.ready() is False


def _token(key, kid="a", **claims) -> str:
    now = int(time.time())
    body = {"iss": "i", "aud": "x", "exp": now + 60, "scope": "verify:run", **claims}
    return jwt.encode(body, key, algorithm="ES256", headers={"kid": kid})


def test_validator_caches_accepted_tokens_and_forgets_them_on_key_change():
    source, clock = Source(_jwks(("a", KEY_A))), Clock()
    cache = JwksCache(source, source="t", ttl=3600, cooldown=0, clock=clock)
    validator = TokenValidator(cache, issuer="i", audience="x")
    token = _token(KEY_A)
    assert validator.validate(token).scopes == {"verify:run"}
    assert validator.validate(token).subject == ""
    assert source.calls == 1
    source.doc = _jwks(("b", KEY_B))
    with pytest.raises(AuthError):
        validator.validate(_token(KEY_B, kid="c"))  # unknown kid → refetch → new generation
    with pytest.raises(AuthError) as info:
        validator.validate(token)  # key "a" is gone: the remembered acceptance was dropped
    assert info.value.reason is AuthReason.UNKNOWN_KID
