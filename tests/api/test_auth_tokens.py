"""Every class of bad credential is refused with 401 (or 403 for a missing scope), and counted by reason."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from core.metrics import API_AUTH_FAILURES
from tests.api.conftest import bearer


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _alg_none(issuer) -> str:
    return (
        f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': issuer.rsa_kid})}.{_b64(issuer.claims('admin:full'))}."
    )


def _hs256_with_public_key(issuer) -> str:
    pem = issuer.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": issuer.rsa_kid})
    payload = _b64(issuer.claims("admin:full"))
    import hashlib
    import hmac

    sig = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"


def _foreign_signature(issuer) -> str:
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(issuer.claims("admin:full"), other, algorithm="RS256", headers={"kid": issuer.rsa_kid})


BAD_TOKENS = [
    pytest.param(lambda i: None, "missing_token", id="no_token"),
    pytest.param(lambda i: "Basic dXNlcjpwYXNz", "wrong_scheme", id="wrong_scheme"),
    pytest.param(lambda i: "Bearer not-a-jwt", "malformed", id="garbage"),
    pytest.param(lambda i: f"Bearer {_alg_none(i)}", "algorithm_not_allowed", id="alg_none"),
    pytest.param(
        lambda i: f"Bearer {_hs256_with_public_key(i)}", "algorithm_not_allowed", id="hs256_public_key"
    ),
    pytest.param(lambda i: f"Bearer {_foreign_signature(i)}", "bad_signature", id="foreign_signature"),
    pytest.param(lambda i: f"Bearer {i.token(exp=int(time.time()) - 3600)}", "expired", id="expired"),
    pytest.param(
        lambda i: f"Bearer {i.token(nbf=int(time.time()) + 3600)}", "not_yet_valid", id="not_yet_valid"
    ),
    pytest.param(lambda i: f"Bearer {i.token(iss='https://evil.test')}", "wrong_issuer", id="wrong_iss"),
    pytest.param(lambda i: f"Bearer {i.token(aud='someone-else')}", "wrong_audience", id="wrong_aud"),
    pytest.param(lambda i: f"Bearer {i.token(exp=None)}", "missing_claim", id="no_exp"),
    pytest.param(lambda i: f"Bearer {i.token(kid='nobody')}", "unknown_kid", id="unknown_kid"),
    pytest.param(
        lambda i: f"Bearer {i.token(alg='ES256', kid=i.rsa_kid)}",
        "key_algorithm_mismatch",
        id="es256_token_rsa_kid",
    ),
]


@pytest.mark.parametrize(("make", "reason"), BAD_TOKENS)
def test_bad_token_is_401_with_json_error(client, issuer, make, reason):
    header = make(issuer)
    before = API_AUTH_FAILURES.labels(reason=reason)._value.get()
    r = client.get("/admin/keys", headers={"Authorization": header} if header else {})
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_token"
    assert r.json()["details"]["reason"] == reason
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert ('error="invalid_token"' in challenge) is (reason != "missing_token")
    assert API_AUTH_FAILURES.labels(reason=reason)._value.get() == before + 1


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_good_token_of_each_algorithm_is_accepted(client, issuer, alg):
    r = client.get("/admin/keys", headers=bearer(issuer.token("keys:read", alg=alg)))
    assert r.status_code == 200, r.text


def test_missing_scope_is_403_insufficient_scope(client, issuer):
    r = client.get("/admin/keys", headers=bearer(issuer.token("verify:run")))
    assert r.status_code == 403
    assert r.json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert 'scope="keys:read"' in r.headers["www-authenticate"]


def test_admin_full_implies_every_scope(client, issuer):
    assert client.get("/admin/keys", headers=bearer(issuer.token("admin:full"))).status_code == 200


def test_scp_claim_list_is_read_as_scopes(client, issuer):
    token = issuer.token(scope=None, scp=["keys:read"])
    assert client.get("/admin/keys", headers=bearer(token)).status_code == 200


def test_leeway_accepts_a_token_just_expired(client, issuer):
    token = issuer.token("keys:read", exp=int(time.time()) - 2)  # leeway is 5 s in the test config
    assert client.get("/admin/keys", headers=bearer(token)).status_code == 200


def test_rotated_jwks_is_refetched_on_unknown_kid(settings, issuer, flows):
    from fastapi.testclient import TestClient

    from deployments.api.app import create_app
    from tests.api.conftest import api_config

    client = TestClient(
        create_app(settings, api_config(issuer.jwks_path, jwks_cooldown_seconds=0), flows=flows)
    )
    assert client.get("/admin/keys", headers=bearer(issuer.token("keys:read"))).status_code == 200
    issuer.rotate_rsa("rsa-2")
    r = client.get("/admin/keys", headers=bearer(issuer.token("keys:read")))
    assert r.status_code == 200, r.text
