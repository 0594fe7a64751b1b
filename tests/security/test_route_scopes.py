"""Attack: calling every route without a token, with a token holding no scope, and with deeply nested
JSON. Each protected route (enumerated from the app, so a new route is covered the day it is added) is 401
without a token and 403 without its scope, before its body is looked at."""

from __future__ import annotations

import sys
import uuid

import pytest
from fastapi.routing import APIRoute

from deployments.api.app import ROUTERS
from deployments.api.middleware import required_scopes
from tests.api.conftest import bearer

PARAMS = {"policy_id": "lksg.demo.v2", "kid": "0" * 32, "backup_id": "backup-1", "run_id": str(uuid.uuid4())}
PROTECTED = [
    (method, route.path, scopes)
    for router in ROUTERS
    for route in router.routes
    if isinstance(route, APIRoute) and (scopes := required_scopes(route.dependant, ())) is not None
    for method in sorted(route.methods)
]


def _url(path: str) -> str:
    return path.format(**PARAMS)


def test_every_admin_and_business_route_is_protected():
    assert len(PROTECTED) >= 11
    assert all(scopes for _, path, scopes in PROTECTED if path != "/admin/runs/{run_id}")


@pytest.mark.parametrize(("method", "path", "scopes"), PROTECTED, ids=[f"{m} {p}" for m, p, _ in PROTECTED])
def test_no_token_is_401_and_no_scope_is_403(client, issuer, method, path, scopes):
    r = client.request(method, _url(path), json={})
    assert r.status_code == 401, r.text[:200]
    assert r.json()["error"] == "invalid_token"
    r = client.request(method, _url(path), json={}, headers=bearer(issuer.token("nothing:useful")))
    assert r.status_code == 403, r.text[:200]
    assert r.json()["error"] == "insufficient_scope"


def test_metrics_need_their_scope_unless_public(client, issuer):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=bearer(issuer.token("verify:run"))).status_code == 403


@pytest.mark.parametrize("path", ["/verify", "/policy/compile"])
def test_deeply_nested_json_is_a_4xx_not_a_crash(client, issuer, path):
    """With the recursion limit raised, as py_ecc does on import, the C parser would overflow the C stack on
    this body and kill the worker (it did, under xdist); the route refuses it by its depth before parsing."""
    body = b'{"context":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1_000_000)
    try:
        r = client.post(
            path, content=body, headers={**bearer(issuer.token()), "Content-Type": "application/json"}
        )
    finally:
        sys.setrecursionlimit(old)
    assert 400 <= r.status_code < 500, r.text[:200]
    assert set(r.json()) == {"error", "message", "details"}


def test_json_nested_within_the_limit_still_reaches_the_route(client, issuer):
    """The depth bound refuses bombs, not ordinary documents: 60 levels parse and fail on their content."""
    body = b'{"context":' + b"[" * 60 + b"]" * 60 + b"}"
    r = client.post(
        "/verify", content=body, headers={**bearer(issuer.token()), "Content-Type": "application/json"}
    )
    assert r.status_code == 422
    assert "nested deeper" not in r.text
    deep = b'{"context":' + b"[" * 70 + b"]" * 70 + b"}"
    r = client.post(
        "/verify", content=deep, headers={**bearer(issuer.token()), "Content-Type": "application/json"}
    )
    assert r.status_code == 422
    assert "nested deeper than 64 levels" in r.text
