"""Schemathesis fuzzing of the real API: every operation in ``openapi/openapi.yaml``, over HTTP, as admin.

A real uvicorn (``deployments.api.app:app_from_env``) runs on a free loopback port with ``CAP_ENV=dev``, a
fresh data directory and the session's Prefect API, where the project's deployments (``prefect.yaml``) are
registered without schedules and without a runner: admin triggers create real flow runs (Prefect checks their
parameters against the flows' signatures) that stay scheduled. Every request carries a bearer token from the
development issuer (``cap token --scope admin:full``). Each generated case runs schemathesis's default
checks against the committed document (which ``test_openapi.py`` keeps equal to the app's).

Checks are split in two. **Invariants** fail the test: no server error at all (every dependency is up, so
any 5xx is a bug); status code, content type, headers and body conform to the schema; data the schema
forbids is refused (negative-data rejection); and no operation that declares security answers a request
without credentials (ignored auth). **Advisories** (positive-data acceptance, missing-header and method
probes) are recorded and printed as findings — they point at places where the schema is looser or
stricter than the app — and written to ``build/fuzz-findings.txt`` by ``make fuzz``.

The example count is bounded: ``CAP_FUZZ_EXAMPLES`` per operation (default 20 in ``make test``); ``make fuzz``
raises it so that at least 1,000 requests are sent, and prints the count.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.core.failures import FailureGroup

from tests.live import clear_pending_flow_runs, free_port, prepare_data_dir, run_cap, serving, uvicorn_command
from tests.paths import REPO

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prefect")]  # shares the session's Prefect API

EXAMPLES = int(os.environ.get("CAP_FUZZ_EXAMPLES", "20"))
MIN_REQUESTS = int(os.environ.get("CAP_FUZZ_MIN_REQUESTS", "0"))
SCHEMA = schemathesis.openapi.from_path(REPO / "openapi" / "openapi.yaml")
SENT: Counter[str] = Counter()
FINDINGS: dict[str, str] = {}
FINDINGS_FILE = os.environ.get("CAP_FUZZ_FINDINGS")


# Statuses the app may return although the OpenAPI document does not declare them (none: keep it so).
# Anything not listed here fails the test.
KNOWN_UNDECLARED: set[tuple[str, str, int]] = set()


class ServerError(AssertionError):
    pass


def no_server_error(ctx, response, case) -> None:
    """No 5xx: the data dir, keyring, JWKS and Prefect are all up, so a 5xx here is a bug."""
    if response.status_code >= 500:
        raise ServerError(
            f"{case.method} {case.operation.path}: HTTP {response.status_code} {response.text[:300]}"
        )


INVARIANTS = [
    no_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,  # data the schema forbids must be refused (4xx), never accepted
    checks.ignored_auth,  # every operation that declares security refuses a request without it
]
ADVISORIES = [
    checks.positive_data_acceptance,
    checks.missing_required_header,
    checks.unsupported_method,
]


async def _register_deployments() -> None:
    """The project's deployments on the session's Prefect API, without schedules (nothing runs them)."""
    from deployments.runner import project_deployments

    for deployment in await project_deployments(REPO):
        deployment.schedules = []
        await deployment.aapply()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, prefect_api: None) -> Iterator[tuple[str, str]]:
    """(base URL, admin:full token) of a real uvicorn on loopback; stopped after the module."""
    from prefect.settings import PREFECT_API_URL

    asyncio.run(_register_deployments())
    root: Path = tmp_path_factory.mktemp("fuzz")
    env = {**os.environ, "CAP_ENV": "dev", "CAP_DATA_DIR": str(root / "var"), "NO_COLOR": "1"}
    for var in ("PROMETHEUS_MULTIPROC_DIR", "CAP_DEBUG"):
        env.pop(var, None)
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    prepare_data_dir(env)
    port = free_port()
    try:
        with serving(uvicorn_command(port), env, port) as url:
            minted = run_cap("token", "--scope", "admin:full", "--ttl", "3600", env=env)
            assert minted.returncode == 0, minted.stderr
            yield url, minted.stdout.strip().splitlines()[-1]
    finally:
        clear_pending_flow_runs()  # the admin flows the fuzz triggered: no runner here, none may run later
        report = "".join(f"--- {key}\n{text}\n" for key, text in sorted(FINDINGS.items()))
        print(f"\nschemathesis: {sum(SENT.values())} requests, by status {dict(sorted(SENT.items()))}")
        print(f"advisory findings ({len(FINDINGS)} distinct):\n{report}")
        if FINDINGS_FILE:
            Path(FINDINGS_FILE).parent.mkdir(parents=True, exist_ok=True)
            Path(FINDINGS_FILE).write_text(report, encoding="utf-8")


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_api_conforms_to_its_schema(case, live: tuple[str, str]) -> None:
    url, token = live
    headers = {"Authorization": f"Bearer {token}"}
    response = case.call(base_url=url, headers=headers, timeout=30)
    SENT[str(response.status_code)] += 1
    try:
        case.validate_response(
            response, checks=ADVISORIES, headers=headers, transport_kwargs={"base_url": url}
        )
    except FailureGroup as group:
        for failure in group.exceptions:
            key = f"{case.method} {case.operation.path} [{response.status_code}] {failure.title}"
            FINDINGS.setdefault(key, str(failure)[:600] + f"\n  request body: {str(case.body)[:300]}")
    try:
        case.validate_response(
            response, checks=INVARIANTS, headers=headers, transport_kwargs={"base_url": url}
        )
    except FailureGroup as group:
        known = (case.method.upper(), case.operation.path, response.status_code) in KNOWN_UNDECLARED
        rest = [f for f in group.exceptions if not (known and f.title == "Undocumented status code")]
        for failure in group.exceptions:
            if failure not in rest:
                key = f"{case.method} {case.operation.path} [{response.status_code}] {failure.title} (known)"
                FINDINGS.setdefault(key, f"{response.text[:300]}\n  request body: {str(case.body)[:300]}")
        if rest:
            raise


def test_request_budget_was_met() -> None:
    """``make fuzz`` sets CAP_FUZZ_MIN_REQUESTS=1000; runs after the fuzz test in this module."""
    assert sum(SENT.values()) >= MIN_REQUESTS, dict(SENT)
