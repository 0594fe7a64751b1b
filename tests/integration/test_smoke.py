"""``cap smoke``: the five checks and their exit codes, against a fake transport and against a live server.

Live runs start the real API in a subprocess on a free port with its own data directory
(``CAP_ENV=dev``, the development token issuer) and run ``cap smoke`` as a subprocess: once healthy
(exit 0), then with one dependency broken at a time (exit 1–5). The server is started two ways: uvicorn
over the app factory (works today) and ``cap serve --no-prefect`` with a token from
``cap token --scope …`` (the real commands).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from deployments.cli.smoke import SMOKE_POLICY, SmokeCheck, SmokeRun, TokenSource, run_smoke
from tests.live import (
    cap_serve_command,
    dev_token,
    free_port,
    prepare_data_dir,
    run_cap,
    serving,
    uvicorn_command,
)
from tests.paths import REPO

# --- the checks against a fake server (httpx.MockTransport) ---

IR = {"ir_version": "1.0", "policy_id": "cap-smoke", "rules": []}


def fake_api(
    overrides: dict[str, httpx.Response] | None = None, *, token: str = "good"
) -> httpx.MockTransport:
    """A CAP API double: each route answers like the real one unless ``overrides`` says otherwise."""
    overrides = overrides or {}
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        key = f"{request.method} {request.url.path}"
        seen.append(key)
        if key in overrides:
            return overrides[key]
        authorised = request.headers.get("Authorization") == f"Bearer {token}"
        if key == "GET /healthz":
            return httpx.Response(200, json={"status": "OK"})
        if key == "GET /readyz":
            return httpx.Response(200, json={"status": "OK", "checks": []})
        if key == "GET /metrics":
            return httpx.Response(
                200, text="# HELP cap_api_requests_total x\n# TYPE cap_api_requests_total counter\n"
            )
        if key == "POST /oauth/token":
            basic = base64.b64encode(b"client:secret").decode()
            if request.headers.get("Authorization") != f"Basic {basic}":
                return httpx.Response(401, json={"error": "invalid_client"})
            assert b"grant_type=client_credentials" in request.content
            return httpx.Response(200, json={"access_token": token, "token_type": "Bearer"})
        if not authorised:
            return httpx.Response(401, json={"error": "invalid_token"})
        if key == "POST /policy/compile":
            assert request.read() and b'"cap-smoke"' in request.content
            return httpx.Response(200, json={"policy_id": "cap-smoke", "policy_hash": "0xab", "ir": IR})
        if key == "POST /verify" and b'"proof"' in request.read():
            return overrides.get("POST /verify proof") or httpx.Response(
                200, json={"result": "WARN", "kid": "k1", "checks": [{"id": "registry", "status": "warn"}]}
            )
        if key == "POST /verify":
            assert b'"ir"' in request.content and b'"context"' in request.content
            return httpx.Response(200, json={"result": "OK", "checks": []})
        return httpx.Response(404)

    transport = httpx.MockTransport(handler)
    transport.seen = seen  # type: ignore[attr-defined]
    return transport


def smoke_with(
    transport: httpx.MockTransport, token: str | None = "good", proof: dict | None = None, **token_args: str
) -> tuple[int, list]:
    with httpx.Client(transport=transport, base_url="http://cap.test") as client:
        tokens = TokenSource(client, token, **token_args)
        return run_smoke(SmokeRun(client, tokens, proof), attempts=2, delay=0, sleep=lambda _: None)


def test_all_checks_pass_in_order() -> None:
    transport = fake_api()
    code, results = smoke_with(transport)
    assert code == 0
    assert [r.check for r in results] == [c.name.lower() for c in SmokeCheck][:5]  # no --proof: no check 6
    assert transport.seen == [
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        "POST /policy/compile",
        "POST /policy/compile",
        "POST /verify",
    ]


@pytest.mark.parametrize(
    ("route", "response", "code"),
    [
        pytest.param("GET /healthz", httpx.Response(500), SmokeCheck.HEALTH, id="health_500"),
        pytest.param(
            "GET /readyz",
            httpx.Response(503, json={"status": "FAIL"}),
            SmokeCheck.READINESS,
            id="readiness_503",
        ),
        pytest.param(
            "GET /metrics",
            httpx.Response(200, text="# TYPE python_info gauge\n"),
            SmokeCheck.METRICS,
            id="metrics_without_cap_families",
        ),
        pytest.param(
            "POST /policy/compile",
            httpx.Response(200, json={"policy_id": "x"}),
            SmokeCheck.POLICY_COMPILE,
            id="compile_accepts_anonymous",
        ),
        pytest.param(
            "POST /verify",
            httpx.Response(200, json={"result": "FAIL"}),
            SmokeCheck.VERIFY,
            id="verify_result_fail",
        ),
        pytest.param(
            "POST /verify",
            httpx.Response(400, json={"error": "invalid_input"}),
            SmokeCheck.VERIFY,
            id="verify_400",
        ),
    ],
)
def test_first_failing_check_sets_the_exit_code(route: str, response: httpx.Response, code: int) -> None:
    rc, results = smoke_with(fake_api({route: response}))
    assert rc == code
    assert results[-1].ok is False and results[-1].attempts == 2
    assert all(r.ok for r in results[:-1])


def test_a_signed_proof_adds_check_6_and_its_failure_names_the_checks() -> None:
    proof = {"schema": "cap-proof.v2"}
    code, results = smoke_with(fake_api(), proof=proof)
    assert code == 0 and results[-1].check == "signed_proof"
    assert "result WARN (warnings: registry)" in results[-1].message

    failing = httpx.Response(
        200,
        json={
            "result": "FAIL",
            "checks": [{"id": "proof_signature", "status": "fail"}, {"id": "x", "status": "ok"}],
        },
    )
    code, results = smoke_with(fake_api({"POST /verify proof": failing}), proof=proof)
    assert code == SmokeCheck.SIGNED_PROOF == 6
    assert "failing checks: proof_signature" in results[-1].message


def test_transport_errors_are_health_failures() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    rc, results = smoke_with(httpx.MockTransport(refuse))
    assert rc == SmokeCheck.HEALTH
    assert "ConnectError" in results[0].message


def test_a_flaky_check_passes_on_retry() -> None:
    calls = iter([httpx.Response(503), httpx.Response(200, json={"status": "OK"})])
    inner = fake_api()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/healthz":
            return next(calls)
        return inner.handle_request(request)

    rc, results = smoke_with(httpx.MockTransport(handler))
    assert rc == 0 and results[0].attempts == 2


def test_token_by_client_credentials() -> None:
    args = {"token_url": "http://cap.test/oauth/token", "client_id": "client", "client_secret": "secret"}
    assert smoke_with(fake_api(), None, **args)[0] == 0
    bad = {**args, "client_secret": "wrong"}
    rc, results = smoke_with(fake_api(), None, **bad)
    assert rc == SmokeCheck.METRICS  # the first check that needs the token
    assert "token endpoint" in results[-1].message


def test_no_credentials_fail_the_protected_checks() -> None:
    rc, results = smoke_with(fake_api(), None)
    assert rc == SmokeCheck.POLICY_COMPILE
    assert "--token" in results[-1].message


def test_smoke_policy_is_a_valid_v1_policy() -> None:
    from core import service
    from core.policy.lint import LintMode

    loaded = service.compile_policy_text(json.dumps(SMOKE_POLICY), "<smoke>", LintMode.STRICT)
    assert loaded.compiled.policy_id == "cap-smoke"


# --- against a live server ---


class LiveApi:
    def __init__(self, url: str, env: dict[str, str], token: Callable[[list[str]], str]) -> None:
        self.url, self.env, self.token = url, env, token

    def smoke(self, *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_cap(
            "smoke", "--url", url or self.url, "--attempts", "1", "--timeout", "5", *args, env=self.env
        )


def _cap_token(env: dict[str, str]) -> Callable[[list[str]], str]:
    def mint(scopes: list[str]) -> str:
        result = run_cap("token", "--scope", " ".join(scopes), env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    return mint


@pytest.fixture(params=["uvicorn", "cap_serve"])
def live_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveApi]:
    port = free_port()
    env = {
        **os.environ,
        "CAP_ENV": "dev",
        "CAP_DATA_DIR": str(tmp_path / "var"),
        "CAP_BUILD_DIR": str(tmp_path / "build"),
        "CAP_METRICS_PUBLIC": "true",
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "PROMETHEUS_MULTIPROC_DIR": "",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR")
    prepare_data_dir(env)
    command = uvicorn_command(port) if request.param == "uvicorn" else cap_serve_command(port)
    token = (lambda scopes: dev_token(env, scopes)) if request.param == "uvicorn" else _cap_token(env)
    with serving(command, env, port) as url:
        yield LiveApi(url, env, token)


@pytest.mark.slow
def test_live_smoke_exit_codes(live_api: LiveApi, tmp_path: Path) -> None:
    admin = live_api.token(["admin:full"])
    healthy = live_api.smoke("--token", admin)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert healthy.stdout.count("PASS") == 5

    assert (
        live_api.smoke("--token", admin, url=f"http://127.0.0.1:{free_port()}").returncode == 1
    )  # nothing there
    assert live_api.smoke("--token", "not-a-jwt").returncode == 4  # compile refuses the token
    assert live_api.smoke("--token", live_api.token(["verify:run"])).returncode == 4  # no policy:compile
    assert live_api.smoke("--token", live_api.token(["policy:compile"])).returncode == 5  # no verify:run

    _signed_proof_check(live_api, admin, tmp_path)

    registry = Path(live_api.env["CAP_DATA_DIR"]) / "registry.sqlite"
    registry.unlink()
    not_ready = live_api.smoke("--token", admin)
    assert not_ready.returncode == 2, not_ready.stdout + not_ready.stderr


def _signed_proof_check(live_api: LiveApi, admin: str, tmp_path: Path) -> None:
    """Check 6 with a proof signed by the server's own key: passes; the same proof tampered fails with 6."""
    from core.keyring import load_keyring
    from core.keys import KeyStore
    from core.proof import proof_file_bytes
    from core.settings import Settings
    from tests.world import World

    settings = Settings.from_env(live_api.env)
    kid = load_keyring(settings.layout.keyring).default_signing_kid
    good = tmp_path / "canary.proof.json"
    good.write_bytes(
        proof_file_bytes(
            World(signer=KeyStore(settings.layout).signer(kid), lists_built_at=datetime.now(UTC))
            .build()
            .proof
        )
    )
    passed = live_api.smoke("--token", admin, "--proof", str(good))
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.count("PASS") == 6 and f"signed proof by key {kid}" in passed.stdout

    doc = json.loads(good.read_bytes())
    doc["public"]["supplier_count"] += 1  # the prover lies about a count; the signature no longer holds
    tampered = tmp_path / "tampered.proof.json"
    tampered.write_text(json.dumps(doc))
    failed = live_api.smoke("--token", admin, "--proof", str(tampered))
    assert failed.returncode == 6, failed.stdout + failed.stderr
    assert "proof_signature" in failed.stderr

    unreadable = live_api.smoke("--token", admin, "--proof", str(tmp_path / "missing.json"))
    assert unreadable.returncode == 2 and "missing.json" in unreadable.stderr
    assert "Traceback" not in unreadable.stderr


@pytest.mark.slow
def test_live_smoke_without_a_token_stops_at_compile(live_api: LiveApi) -> None:
    result = live_api.smoke("--json")  # no token at all: metrics are public here, compile is not
    assert result.returncode == 4, result.stdout + result.stderr


@pytest.mark.slow
def test_wrapper_script_passes_the_exit_code(live_api: LiveApi) -> None:
    env = {**live_api.env, "CAP": str(Path(sys.executable).with_name("cap"))}
    assert Path(env["CAP"]).exists(), "the cap console script is installed next to the interpreter"
    ok = subprocess.run(
        [
            "bash",
            str(REPO / "scripts" / "smoke_test.sh"),
            "--url",
            live_api.url,
            "--attempts",
            "1",
            "--token",
            live_api.token(["admin:full"]),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    env["BASE_URL"] = f"http://127.0.0.1:{free_port()}"
    down = subprocess.run(
        ["bash", str(REPO / "scripts" / "smoke_test.sh"), "--attempts", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert down.returncode == 1
