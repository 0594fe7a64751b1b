"""End to end over a real uvicorn server on a loopback port: token → verify → compile → 304."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
import uvicorn

from deployments.api.app import create_app
from tests.api.conftest import api_config, bearer


@pytest.fixture
def server(settings, issuer, flows):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(settings, api_config(issuer.jwks_path), flows=flows)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def test_verify_compile_and_conditional_get_over_http(server, issuer, proof_doc):
    with httpx.Client(
        base_url=server, headers=bearer(issuer.token("verify:run policy:compile policy:write policy:read"))
    ) as http:
        assert http.get("/healthz").status_code == 200
        verdict = http.post("/verify", json={"proof": proof_doc})
        assert verdict.status_code == 200 and verdict.json()["result"] in ("OK", "WARN")
        policy = (
            "version: lksg.v1\nname: E2E\ncreated_at: '2025-01-01T00:00:00Z'\nconstraints:\n"
            "  require_at_least_one_ubo: true\n  supplier_count_max: 10\n  ubo_count_min: 1\n"
        )
        compiled = http.post("/policy/compile", json={"policy_yaml": policy, "persist": True})
        assert compiled.status_code == 200, compiled.text
        etag = compiled.headers["etag"]
        assert http.get("/policy/E2E", headers={"If-None-Match": etag}).status_code == 304
        bad = httpx.post(
            f"{server}/verify", json={"proof": proof_doc}, headers={"Authorization": "Bearer x.y.z"}
        )
        assert bad.status_code == 401 and "invalid_token" in bad.headers["www-authenticate"]
