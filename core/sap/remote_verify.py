"""Verification of an ingest proof: in-process (``core.service.verify_document``) or through the API.

``POST <verify_url>/verify`` takes ``{"proof": <cap-proof.v2 document>}`` with a bearer token from the
``CAP_VERIFY_TOKEN`` environment variable; a non-strict mode is sent as ``options.enforce_mode`` (the
API requires ``verify:admin`` for it). httpx is imported when a request is made (importing it loads
``rich``, which nothing in ``core`` may load at import time); its exceptions are translated here only.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from core import service
from core.anchors import trust_anchors
from core.errors import CapError
from core.modes import CheckStatus, EnforcementMode
from core.proof import Proof, proof_file_bytes
from core.sap.config import read_secret
from core.sap.odata import redact_url
from core.settings import Settings
from core.trust import TrustedLists
from core.verify import Check, Report

if TYPE_CHECKING:
    import httpx

VERIFY_TOKEN_ENV = "CAP_VERIFY_TOKEN"  # noqa: S105 - the variable's name, not a secret
_TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


class RemoteVerifyError(CapError):
    """The verification API could not be reached or refused the request (not a FAIL verdict)."""

    code = "remote_verify_failed"


class VerifyOutcome(BaseModel):
    """What a verification said, reduced to ids and statuses (check messages stay in the report)."""

    model_config = ConfigDict(frozen=True)

    result: CheckStatus
    via: str
    checks: int
    failed_checks: tuple[str, ...] = ()
    warned_checks: tuple[str, ...] = ()

    @classmethod
    def of(cls, checks: list[Check], result: CheckStatus, via: str) -> VerifyOutcome:
        return cls(
            result=result,
            via=via,
            checks=len(checks),
            failed_checks=tuple(c.id for c in checks if c.status is CheckStatus.FAIL),
            warned_checks=tuple(c.id for c in checks if c.status is CheckStatus.WARN),
        )


def verify_in_process(
    settings: Settings,
    proof: Proof,
    mode: EnforcementMode,
    now: datetime,
    configured: TrustedLists | None = None,
) -> VerifyOutcome:
    """Verify against the local keyring, registry and trusted lists: the installed ones and the lists
    this ingest's (operator-owned) config names. Raises :class:`NotFoundError` without a keyring."""
    keyring = service.load_local_keyring(settings)
    trust = trust_anchors(settings)
    if configured is not None:
        trust = trust.model_copy(update={"lists": (*trust.lists, configured)})
    report: Report = service.verify_document(
        settings, proof, keyring=keyring, mode=mode, now=now, trust=trust
    )
    return VerifyOutcome.of(report.checks, report.result, "in-process")


def verify_endpoint(url: str) -> str:
    """``url`` as the ``/verify`` endpoint (an API base URL gets ``/verify`` appended)."""
    return url if url.rstrip("/").endswith("/verify") else url.rstrip("/") + "/verify"


def verify_remote(
    url: str,
    proof: Proof,
    mode: EnforcementMode,
    *,
    env: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 30.0,
) -> VerifyOutcome:
    """POST the proof to the API. Raises :class:`ConfigError` (token unset) or :class:`RemoteVerifyError`."""
    token = read_secret(VERIFY_TOKEN_ENV, "verify_url", env).get_secret_value()
    body: dict[str, Any] = {"proof": json.loads(proof_file_bytes(proof))}
    if mode is not EnforcementMode.STRICT:
        body["options"] = {"enforce_mode": mode.value}
    endpoint = verify_endpoint(url)
    response = _post(endpoint, body, token, transport, timeout)
    return _outcome(response, endpoint)


def _post(
    endpoint: str, body: dict[str, Any], token: str, transport: httpx.BaseTransport | None, timeout: float
) -> httpx.Response:
    """The one place httpx exceptions become :class:`RemoteVerifyError`."""
    lib = importlib.import_module("httpx")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    try:
        with lib.Client(timeout=timeout, transport=transport) as client:
            response: httpx.Response = client.post(endpoint, json=body, headers=headers)
    except lib.HTTPError as exc:
        where = redact_url(endpoint)
        raise RemoteVerifyError(f"cannot reach {where}: {type(exc).__name__}", transient=True) from exc
    return response


def _outcome(response: httpx.Response, endpoint: str) -> VerifyOutcome:
    where = redact_url(endpoint)
    if response.status_code != 200:
        code, message = _error_body(response.content)
        raise RemoteVerifyError(
            f"verification API {where} answered HTTP {response.status_code}"
            + (f": {message}" if message else ""),
            transient=response.status_code in _TRANSIENT_STATUSES,
            status=response.status_code,
            api_code=code,
        )
    try:
        doc = json.loads(response.content)
        result = CheckStatus(str(doc["result"]).lower())
        checks = [Check.model_validate(c) for c in doc.get("checks", [])]
    except (ValueError, KeyError, TypeError) as exc:
        raise RemoteVerifyError(
            f"unexpected response from {where}", expected='{"result": "OK|WARN|FAIL", "checks": [...]}'
        ) from exc
    return VerifyOutcome.of(checks, result, "api")


def _error_body(content: bytes) -> tuple[str | None, str | None]:
    try:
        doc = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(doc, dict):
        return None, None
    code, message = doc.get("error"), doc.get("message")
    return (str(code) if code else None), (str(message) if message else None)
