"""``cap smoke``: the seed's five post-deployment checks against a running API, one exit code each, and a
sixth with a real signed proof.

Checks, in order, stopping at the first failure (exit code = the failing check, 0 when all pass):

1. ``GET /healthz`` answers 200;
2. ``GET /readyz`` answers 200 (registry, keyring and policy store usable);
3. ``GET /metrics`` answers 200 with Prometheus text holding ``cap_*`` families (sent with the token when
   one is available, since ``/metrics`` needs ``metrics:read`` unless ``CAP_METRICS_PUBLIC`` is set);
4. ``POST /policy/compile`` rejects a request without a token (401) and compiles :data:`SMOKE_POLICY` with it;
5. ``POST /verify`` in compatibility mode — ``{ir | policy_id, context}`` from the policy just compiled, with
   :data:`SMOKE_CONTEXT` satisfying every rule — answers 200 with ``result`` OK or WARN;
6. with ``--proof FILE`` only: ``POST /verify`` of that ``cap-proof.v2`` document — a canary proof signed by
   the deployment's own key, built once with ``cap proof build`` — answers 200 with ``result`` OK or WARN.

Check 5 exercises the whole verification path except signatures, since the server cannot know the key of a
proof the smoke test built. Check 6 closes that gap: signatures, key status in the live keyring (run it after
every rotation phase), evidence and the registry lookup (docs/deployment.md, "Smoke tests").

These exit codes (seed Track A3) are specific to this command; usage errors still exit 2 like every command.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from core.documents import parse_json
from core.errors import InvalidInputError
from core.proof import SCHEMAS
from deployments.cli.output import JsonFlag, err, out

SMOKE_POLICY: dict[str, Any] = {
    "version": "lksg.v1",
    "name": "cap-smoke",
    "created_at": "2025-01-01T00:00:00Z",
    "constraints": {"require_at_least_one_ubo": True, "supplier_count_max": 10, "ubo_count_min": 1},
    "notes": "cap smoke: compiled and verified after every deployment",
}
SMOKE_CONTEXT: dict[str, Any] = {
    "supplier_hashes": ["0x" + "11" * 32],
    "ubo_hashes": ["0x" + "22" * 32],
    "supplier_count": 1,
    "ubo_count": 1,
}
DEFAULT_SCOPES = "policy:compile policy:read verify:run metrics:read"
PASSING_RESULTS = frozenset({"OK", "WARN"})


class SmokeCheck(IntEnum):
    """The checks; each value is the exit code when that check fails."""

    HEALTH = 1
    READINESS = 2
    METRICS = 3
    POLICY_COMPILE = 4
    VERIFY = 5
    SIGNED_PROOF = 6


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: str
    ok: bool
    message: str
    attempts: int
    seconds: float


class SmokeFailure(Exception):
    """One attempt of a check failed; the message says what was expected."""


class TokenSource:
    """A fixed bearer token, or one fetched once by OAuth2 client credentials."""

    def __init__(
        self,
        client: httpx.Client,
        token: str | None = None,
        *,
        token_url: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        scope: str = DEFAULT_SCOPES,
    ) -> None:
        self._client, self._token, self._url = client, token, token_url
        self._id, self._secret, self._scope = client_id, client_secret, scope

    @property
    def available(self) -> bool:
        return self._token is not None or bool(self._url and self._id and self._secret)

    def get(self) -> str:
        """Raises :class:`SmokeFailure` when no token is configured or the token endpoint refuses."""
        if self._token is None:
            self._token = self._fetch()
        return self._token

    def _fetch(self) -> str:
        if not (self._url and self._id and self._secret):
            raise SmokeFailure("no token: pass --token, or --client-id, --client-secret and --token-url")
        data = {"grant_type": "client_credentials", "scope": self._scope}
        response = _send(self._client, "POST", self._url, data=data, auth=(self._id, self._secret))
        if response.status_code != 200:
            raise SmokeFailure(f"token endpoint {self._url} answered {response.status_code}")
        token = _json(response).get("access_token")
        if not isinstance(token, str) or not token:
            raise SmokeFailure(f"token endpoint {self._url} returned no access_token")
        return token


def _send(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        return client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:  # connection refused, TLS, timeout: one place translates them
        raise SmokeFailure(f"{method} {client.base_url.join(url)}: {type(exc).__name__}: {exc}") from exc


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise SmokeFailure(f"{response.request.url.path} did not return JSON") from exc
    if not isinstance(body, dict):
        raise SmokeFailure(f"{response.request.url.path} returned {type(body).__name__}, expected an object")
    return body


def _expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        snippet = response.text[:200].replace("\n", " ")
        raise SmokeFailure(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}, expected {status}: {snippet}"
        )
    return response


class SmokeRun:
    """The checks against one base URL; state flows from compile (check 4) to verify (check 5)."""

    def __init__(
        self, client: httpx.Client, tokens: TokenSource, proof: dict[str, Any] | None = None
    ) -> None:
        self.client, self.tokens, self.proof = client, tokens, proof
        self.compiled: dict[str, Any] = {}

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.get()}"}

    def health(self) -> str:
        _expect(_send(self.client, "GET", "/healthz"), 200)
        return "/healthz 200"

    def readiness(self) -> str:
        response = _send(self.client, "GET", "/readyz")
        _expect(response, 200)
        return "/readyz 200"

    def metrics(self) -> str:
        headers = self._auth() if self.tokens.available else {}
        response = _expect(_send(self.client, "GET", "/metrics", headers=headers), 200)
        families = sum(1 for line in response.text.splitlines() if line.startswith("# TYPE cap_"))
        if not families:
            raise SmokeFailure("/metrics returned no cap_* metric families")
        return f"/metrics 200, {families} cap_* families"

    def policy_compile(self) -> str:
        anonymous = _send(self.client, "POST", "/policy/compile", json={"policy": SMOKE_POLICY})
        if anonymous.status_code != 401:
            raise SmokeFailure(
                f"POST /policy/compile without a token answered {anonymous.status_code}, expected 401"
            )
        response = _send(
            self.client, "POST", "/policy/compile", json={"policy": SMOKE_POLICY}, headers=self._auth()
        )
        body = _json(_expect(response, 200))
        if not (body.get("policy_id") or body.get("ir")):
            raise SmokeFailure("POST /policy/compile returned neither policy_id nor ir")
        self.compiled = body
        return f"/policy/compile 200, policy_hash {body.get('policy_hash', '?')}; unauthenticated 401"

    def verify(self) -> str:
        if not self.compiled:
            raise SmokeFailure("no compiled policy (check 4 did not run)")
        # the inline IR needs no policy store entry (compile does not persist unless asked)
        ref = (
            {"ir": self.compiled["ir"]}
            if self.compiled.get("ir")
            else {"policy_id": self.compiled["policy_id"]}
        )
        response = _send(
            self.client, "POST", "/verify", json={**ref, "context": SMOKE_CONTEXT}, headers=self._auth()
        )
        body = _json(_expect(response, 200))
        result = str(body.get("result", "")).upper()
        if result not in PASSING_RESULTS:
            raise SmokeFailure(
                f"POST /verify result {body.get('result')!r}, expected OK or WARN: {json.dumps(body)[:300]}"
            )
        return f"/verify 200, result {result}"

    def signed_proof(self) -> str:
        response = _send(self.client, "POST", "/verify", json={"proof": self.proof}, headers=self._auth())
        body = _json(_expect(response, 200))
        result = str(body.get("result", "")).upper()
        checks = body.get("checks") if isinstance(body.get("checks"), list) else []
        by_status = {
            status: [str(c.get("id")) for c in checks if isinstance(c, dict) and c.get("status") == status]
            for status in ("fail", "warn")
        }
        if result not in PASSING_RESULTS:
            raise SmokeFailure(
                f"POST /verify of the signed proof: result {body.get('result')!r}, expected OK or WARN; "
                f"failing checks: {', '.join(by_status['fail']) or 'none named'}"
            )
        warned = f" (warnings: {', '.join(by_status['warn'])})" if by_status["warn"] else ""
        return f"/verify 200 for the signed proof by key {body.get('kid')}, result {result}{warned}"

    def steps(self) -> list[tuple[SmokeCheck, Callable[[], str]]]:
        steps: list[tuple[SmokeCheck, Callable[[], str]]] = [
            (SmokeCheck.HEALTH, self.health),
            (SmokeCheck.READINESS, self.readiness),
            (SmokeCheck.METRICS, self.metrics),
            (SmokeCheck.POLICY_COMPILE, self.policy_compile),
            (SmokeCheck.VERIFY, self.verify),
        ]
        if self.proof is not None:
            steps.append((SmokeCheck.SIGNED_PROOF, self.signed_proof))
        return steps


def run_check(
    check: SmokeCheck,
    step: Callable[[], str],
    *,
    attempts: int,
    delay: float,
    sleep: Callable[[float], None] = time.sleep,
) -> CheckResult:
    """Run ``step`` up to ``attempts`` times, ``delay`` seconds apart."""
    started, message = time.monotonic(), ""
    for attempt in range(1, attempts + 1):
        try:
            message = step()
        except SmokeFailure as exc:
            message = str(exc)
            if attempt < attempts:
                sleep(delay)
            continue
        return CheckResult(check.name.lower(), True, message, attempt, round(time.monotonic() - started, 3))
    return CheckResult(check.name.lower(), False, message, attempts, round(time.monotonic() - started, 3))


def run_smoke(
    run: SmokeRun, *, attempts: int = 3, delay: float = 2.0, sleep: Callable[[float], None] = time.sleep
) -> tuple[int, list[CheckResult]]:
    """All checks in order; returns (exit code, results), the code of the first failing check or 0."""
    results: list[CheckResult] = []
    for check, step in run.steps():
        result = run_check(check, step, attempts=attempts, delay=delay, sleep=sleep)
        results.append(result)
        if not result.ok:
            return int(check), results
    return 0, results


def smoke(
    url: Annotated[
        str, typer.Option("--url", envvar="CAP_SMOKE_URL", help="Base URL of the API")
    ] = "http://127.0.0.1:8080",
    token: Annotated[str | None, typer.Option(envvar="CAP_SMOKE_TOKEN", help="Bearer token")] = None,
    client_id: Annotated[str | None, typer.Option(envvar="OAUTH_CLIENT_ID")] = None,
    client_secret: Annotated[str | None, typer.Option(envvar="OAUTH_CLIENT_SECRET")] = None,
    token_url: Annotated[str | None, typer.Option(envvar="OAUTH_TOKEN_URL")] = None,
    scope: Annotated[str, typer.Option(help="Scopes requested by client credentials")] = DEFAULT_SCOPES,
    attempts: Annotated[int, typer.Option(min=1, help="Tries per check")] = 3,
    delay: Annotated[float, typer.Option(min=0, help="Seconds between tries")] = 2.0,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds per request")] = 10.0,
    insecure: Annotated[bool, typer.Option(help="Do not verify the server's TLS certificate")] = False,
    proof: Annotated[
        Path | None,
        typer.Option(
            envvar="CAP_SMOKE_PROOF",
            help="A cap-proof.v2 file signed by the deployment's key: adds check 6, its verification",
        ),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Run the deployment smoke checks. Exit 0 all passed; 1 health, 2 readiness, 3 metrics,
    4 policy compile, 5 verify, 6 the signed proof (--proof) failed."""
    document = _read_proof(proof) if proof is not None else None
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout, verify=not insecure) as client:
        tokens = TokenSource(
            client, token, token_url=token_url, client_id=client_id, client_secret=client_secret, scope=scope
        )
        code, results = run_smoke(SmokeRun(client, tokens, document), attempts=attempts, delay=delay)
    if json_out:
        out.print_json(json.dumps({"url": url, "exit_code": code, "checks": [asdict(r) for r in results]}))
    else:
        for r in results:
            (out if r.ok else err).print(
                f"{'PASS' if r.ok else 'FAIL'} {r.check}: {r.message} "
                f"({r.attempts} tries, {r.seconds:.2f} s)",
                highlight=False,
                markup=False,
            )
    raise typer.Exit(code)


def _read_proof(path: Path) -> dict[str, Any]:
    """The proof file as a JSON object. Raises :class:`InvalidInputError` (exit 2) before any check runs."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read the proof: {exc.strerror}", file=str(path)) from None
    expected = " or ".join(SCHEMAS)
    document = parse_json(data, source=str(path), what="proof", expected=expected)
    if not isinstance(document, dict) or document.get("schema") not in SCHEMAS:
        raise InvalidInputError("not a cap-proof document", file=str(path), expected=expected)
    return document
