"""Attack: forged, confused, oversized and overlong bearer tokens. Every class of bad credential is refused
with 401 (or 403 for a missing scope), counted by reason, and nothing the attacker wrote is echoed back."""

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


def _embedded_key(issuer, where: str) -> str:
    """Signed by the attacker's own key, which the header offers (``jwk``) or points at (``jku``)."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(RSAAlgorithm.to_jwk(attacker.public_key()))
    offered = {"jwk": public} if where == "jwk" else {"jku": "https://evil.test/jwks.json"}
    return jwt.encode(
        issuer.claims("admin:full"), attacker, algorithm="RS256", headers={"kid": issuer.rsa_kid, **offered}
    )


def _header_padded(issuer, size: int) -> str:
    return issuer.token("admin:full", kid=issuer.rsa_kid) + "A" * size


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
    pytest.param(
        lambda i: f"Bearer {i.token(alg='RS256', kid=i.ec_kid)}",
        "key_algorithm_mismatch",
        id="rs256_token_ec_kid",
    ),
    pytest.param(lambda i: f"Bearer {_embedded_key(i, 'jwk')}", "bad_signature", id="embedded_jwk"),
    pytest.param(lambda i: f"Bearer {_embedded_key(i, 'jku')}", "bad_signature", id="jku_url"),
    pytest.param(lambda i: f"Bearer {i.token(exp=253402300799)}", "lifetime_too_long", id="exp_year_9999"),
    pytest.param(
        lambda i: f"Bearer {i.token(iat=int(time.time()) - 10, exp=int(time.time()) + 25 * 3600)}",
        "lifetime_too_long",
        id="lifetime_25h",
    ),
    pytest.param(
        lambda i: f"Bearer {i.token(exp=str(int(time.time()) + 300))}",
        "claim_not_numeric",
        id="exp_as_string",
    ),
    pytest.param(
        lambda i: f"Bearer {i.token(nbf=str(int(time.time()) - 1))}", "claim_not_numeric", id="nbf_as_string"
    ),
    pytest.param(lambda i: f"Bearer {i.token(iat=True)}", "claim_not_numeric", id="iat_as_bool"),
    pytest.param(lambda i: f"Bearer {_header_padded(i, 1_300_000)}", "token_too_large", id="header_1_3_mb"),
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


def test_a_token_within_the_maximum_lifetime_is_accepted(client, issuer):
    now = int(time.time())
    token = issuer.token("keys:read", iat=now, exp=now + 24 * 3600)
    assert client.get("/admin/keys", headers=bearer(token)).status_code == 200


def test_maximum_lifetime_is_configurable(settings, issuer, flows):
    from fastapi.testclient import TestClient

    from deployments.api.app import create_app
    from tests.api.conftest import api_config

    config = api_config(issuer.jwks_path, max_token_lifetime_seconds=60)
    client = TestClient(create_app(settings, config, flows=flows))
    r = client.get("/admin/keys", headers=bearer(issuer.token("keys:read")))  # exp = now + 300
    assert r.status_code == 401
    assert r.json()["details"]["reason"] == "lifetime_too_long"


@pytest.mark.parametrize("kid", ["<script>alert(1)</script>", "x" * 500, "../../etc/passwd"])
def test_attacker_kid_is_not_echoed(client, issuer, kid):
    r = client.get("/admin/keys", headers=bearer(issuer.token(kid=kid)))
    assert r.status_code == 401
    assert r.json()["details"]["reason"] == "unknown_kid"
    assert kid not in r.text
    assert kid not in r.headers["www-authenticate"]


def test_oversized_header_is_refused_before_parsing(client, issuer, monkeypatch):
    """1.3 MB of token: refused on its length; the JWT parser is never called."""
    calls = []
    monkeypatch.setattr(jwt, "get_unverified_header", lambda *a, **k: calls.append(1) or {})
    r = client.get("/admin/keys", headers={"Authorization": "Bearer " + "A" * 1_300_000})
    assert r.status_code == 401
    assert r.json()["details"] == {"reason": "token_too_large", "limit": 8192}
    assert calls == []


def test_jwks_file_path_is_not_in_the_503(client, issuer):
    issuer.jwks_path.unlink()
    r = client.get("/admin/keys", headers=bearer(issuer.token("keys:read")))
    assert r.status_code == 503
    assert r.json()["error"] == "jwks_unavailable"
    assert str(issuer.jwks_path.parent) not in r.text
    assert r.json()["details"]["file"] == "jwks.json"


def test_backup_store_path_is_not_in_a_storage_error(client, issuer, settings, monkeypatch):
    """A real OSError of the file store, translated once (core/backup/storage.file_errors), names its path:
    the client sees only the last part of it."""
    from core.backup.storage import FileStore, file_errors

    def failing_list(store):
        with file_errors("list backups", store.root):
            raise PermissionError(13, "Permission denied", str(store.root))

    monkeypatch.setattr(FileStore, "list_backups", failing_list)
    r = client.get("/admin/backups", headers=bearer(issuer.token("backup:read")))
    assert r.status_code == 503
    assert str(settings.layout.root.resolve()) not in r.text, r.text
    assert "/" not in r.json()["details"]["file"]
