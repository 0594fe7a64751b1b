"""Attack: large bodies. Authentication and scopes are checked from the headers before one body byte is
read; limits hold while the body streams (declared or chunked); few large bodies are read at once."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from deployments.api.app import create_app
from tests.api.conftest import api_config, bearer
from tests.security.asgi import CHUNK, post, scope_of

BIG = 28 * 1024 * 1024
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def app(settings, issuer, flows):
    return create_app(settings, api_config(issuer.jwks_path), flows=flows)


@pytest.mark.parametrize("declare_length", [True, False], ids=["content_length", "chunked"])
@pytest.mark.parametrize(
    "path", ["/verify", "/policy/compile", "/admin/backups", "/admin/keys/rotate", "/admin/restores"]
)
def test_anonymous_large_body_is_401_before_the_body_is_read(app, path, declare_length):
    tracemalloc.start()
    try:
        exchange = post(app, path, BIG, JSON, declare_length=declare_length)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert exchange.status == 401, exchange.body[:200]
    assert exchange.json()["error"] == "invalid_token"
    assert exchange.pulled <= CHUNK, f"the app read {exchange.pulled} body bytes before refusing"
    assert peak < 4 * 1024 * 1024, f"refusing an anonymous body allocated {peak} bytes"


def test_wrong_scope_is_403_before_the_body_is_read(app, issuer):
    exchange = post(app, "/verify", BIG, {**JSON, **bearer(issuer.token("policy:read"))})
    assert exchange.status == 403
    assert exchange.json()["error"] == "insufficient_scope"
    assert exchange.pulled <= CHUNK


def test_garbage_token_is_401_before_the_body_is_read(app):
    exchange = post(app, "/verify", BIG, {**JSON, "Authorization": "Bearer not.a.jwt"})
    assert exchange.status == 401
    assert exchange.pulled <= CHUNK


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/verify", 32 * 1024 * 1024),
        ("/policy/compile", 1024 * 1024),
        ("/admin/keys/rotate", 64 * 1024),
        ("/admin/keys/0123/revoke", 64 * 1024),
    ],
)
def test_chunked_body_over_the_route_limit_stops_at_the_limit(app, issuer, path, limit):
    """No Content-Length: the limit is enforced while streaming, not after buffering it all."""
    exchange = post(app, path, limit * 2, {**JSON, **bearer(issuer.token())}, declare_length=False)
    assert exchange.status == 413
    assert exchange.json()["error"] == "body_too_large"
    assert exchange.json()["details"]["limit"] == limit
    assert exchange.pulled <= limit + CHUNK


def test_declared_length_over_the_limit_is_413_unread(app, issuer):
    exchange = post(app, "/policy/compile", 5 * 1024 * 1024, {**JSON, **bearer(issuer.token())})
    assert exchange.status == 413
    assert exchange.pulled == 0


def test_one_large_body_too_many_is_503_busy(settings, issuer, flows):
    """With one large-body slot, a second large body read while the first is in flight is refused."""
    app = create_app(settings, api_config(issuer.jwks_path, max_large_bodies=1), flows=flows)
    token = issuer.token()
    statuses: dict[str, int] = {}
    first_is_large, release_first = asyncio.Event(), asyncio.Event()

    async def request(name: str, gate: bool) -> None:
        sent = 0

        async def receive():
            nonlocal sent
            if sent >= 2 * 1024 * 1024:
                if gate:
                    first_is_large.set()
                    await release_first.wait()
                return {"type": "http.request", "body": b"", "more_body": False}
            sent += CHUNK
            return {"type": "http.request", "body": b" " * CHUNK, "more_body": True}

        async def send(message):
            if message["type"] == "http.response.start":
                statuses[name] = message["status"]

        headers = [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json")]
        await app(scope_of("/verify", headers), receive, send)

    async def both() -> None:
        first = asyncio.create_task(request("first", gate=True))
        await first_is_large.wait()
        await request("second", gate=False)
        release_first.set()
        await first

    asyncio.run(both())
    assert statuses["second"] == 503
    assert statuses["first"] == 422  # it was read in full (and is not a valid request)
