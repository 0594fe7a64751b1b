"""The API's one error mapping: CapError → HTTP status, JSON body ``{error, message, details}``.

Nothing else in the API turns errors into responses; no error body carries an absolute server path.
Unexpected exceptions become a 500 with code ``internal_error`` and no trace; auth failures are counted
by reason.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.auth import AuthError, InsufficientScopeError, JwksUnavailableError
from core.errors import (
    CapError,
    ConfigError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    KeyError_,
    NotFoundError,
    RotationError,
    StorageError,
    VerificationError,
)
from core.metrics import API_AUTH_FAILURES
from core.policy.limits import PolicyLimitError, PolicyTooLargeError
from core.policy.lint import PolicyLintError
from deployments.api.flows import FlowsUnavailableError

log = logging.getLogger("cap.api")

STATUS_TABLE: tuple[tuple[type[CapError], int], ...] = (
    (AuthError, 401),
    (InsufficientScopeError, 403),
    (PolicyLintError, 422),
    (PolicyTooLargeError, 413),
    (PolicyLimitError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (RotationError, 409),
    (IntegrityError, 400),
    (VerificationError, 400),
    (InvalidInputError, 400),
    (KeyError_, 400),
    (JwksUnavailableError, 503),
    (FlowsUnavailableError, 503),
    (StorageError, 503),
    (ConfigError, 500),
)
# Errors whose class alone would mislead a client: server-side state, not the request.
CODE_OVERRIDES = {
    "keyring_not_found": 503,
    "database_not_found": 503,
    "keyring_unavailable": 503,
    "lists_unavailable": 503,
}


def status_for(exc: CapError) -> int:
    if exc.code in CODE_OVERRIDES:
        return CODE_OVERRIDES[exc.code]
    return next((status for kind, status in STATUS_TABLE if isinstance(exc, kind)), 500)


# An absolute file path (or file:// URI) not inside a URL: a client sees only its last part.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])(?:file://)?/(?:[^\s/'\"<>]+/)+([^\s/'\"<>]*)")


def without_paths(value: Any) -> Any:
    """``value`` with every absolute path replaced by its last part (server layout is not the client's
    business): applied to every error body the API sends."""
    if isinstance(value, str):
        return _ABSOLUTE_PATH.sub(lambda m: m.group(1) or "<dir>", value)
    if isinstance(value, dict):
        return {k: without_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_paths(v) for v in value]
    return value


def error_body(code: str, message: str, details: dict[str, object] | None = None) -> dict[str, object]:
    return {"error": code, "message": message, "details": details or {}}


def _auth_headers(exc: CapError) -> dict[str, str]:
    if isinstance(exc, AuthError):
        if exc.reason.value == "missing_token":
            return {"WWW-Authenticate": 'Bearer realm="cap-verifier"'}
        return {
            "WWW-Authenticate": f'Bearer realm="cap-verifier", error="invalid_token", '
            f'error_description="{exc.message}"'
        }
    if isinstance(exc, InsufficientScopeError):
        scope = exc.details.get("required", "")
        return {
            "WWW-Authenticate": f'Bearer realm="cap-verifier", error="insufficient_scope", scope="{scope}"'
        }
    return {}


async def cap_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CapError)
    if isinstance(exc, AuthError):
        API_AUTH_FAILURES.labels(reason=exc.reason.value).inc()
    elif isinstance(exc, InsufficientScopeError):
        API_AUTH_FAILURES.labels(reason="insufficient_scope").inc()
    status = status_for(exc)
    if status >= 500:
        log.warning("%s: %s", exc.code, exc.diagnostics())
    return JSONResponse(without_paths(exc.to_dict()), status_code=status, headers=_auth_headers(exc))


async def validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": _message(e), "type": e.get("type", "")} for e in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    field = ".".join(str(p) for p in first["loc"])
    return JSONResponse(error_body("invalid_request", f"{field}: {first['msg']}", {"errors": errors}), 422)


def _message(error: dict[str, Any]) -> str:
    """Pydantic's message, with the parser's reason for a JSON syntax error ("JSON decode error" alone
    tells the caller nothing)."""
    message = str(error.get("msg", ""))
    reason = (error.get("ctx") or {}).get("error")
    return f"{message}: {reason}" if error.get("type") == "json_invalid" and reason else message


async def http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = getattr(exc, "code", None) or {
        404: "not_found",
        405: "method_not_allowed",
        413: "body_too_large",
    }.get(exc.status_code, "http_error")
    details = getattr(exc, "details", None)
    return JSONResponse(error_body(code, str(exc.detail), details), exc.status_code, headers=exc.headers)


async def internal_error(_: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled %s in API: %s", type(exc).__name__, exc)
    return JSONResponse(error_body("internal_error", "internal server error"), 500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(CapError, cap_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)
