"""The app factory: ``create_app(settings)`` for tests and ``app_from_env()`` for uvicorn workers.

Settings and configuration are built here, never at import. Routes are thin (parse → one core call →
response model); errors are mapped once in :mod:`deployments.api.errors`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import FastAPI

from core.settings import Settings
from deployments.api import errors
from deployments.api.config import API_VERSION, ApiConfig
from deployments.api.deps import OAUTH2_SCHEME_NAME
from deployments.api.flows import FlowGateway
from deployments.api.middleware import AuthGate, BodyLimit, RequestMetrics
from deployments.api.models import ErrorBody
from deployments.api.routes import backups, health, keys, policy, restores, runs, verify
from deployments.api.state import ApiState, utc_now

TITLE = "CAP Verifier API"
DESCRIPTION = (
    "Verify LkSG compliance proofs, compile policies, and operate backups, restores and key rotation. "
    "Bearer JWT (OAuth2 client credentials, RS256/ES256); see docs/api.md."
)
PROTECTED_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed input (body not JSON, bad identifier)"},
    401: {"model": ErrorBody, "description": "Missing or invalid bearer token"},
    403: {"model": ErrorBody, "description": "Token lacks the route's scope"},
    404: {"model": ErrorBody, "description": "Named policy, key, backup or run not found"},
    422: {"model": ErrorBody, "description": "Input that does not have the expected shape"},
}
ROUTERS = (
    policy.router,
    verify.router,
    backups.router,
    restores.router,
    keys.router,
    runs.router,
)


def create_app(
    settings: Settings,
    config: ApiConfig | None = None,
    *,
    flows: FlowGateway | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> FastAPI:
    """The API over ``settings``. Raises :class:`ConfigError` when no token issuer is usable."""
    config = config or ApiConfig.from_env(settings)
    app = FastAPI(title=TITLE, version=API_VERSION, description=DESCRIPTION, docs_url="/docs", redoc_url=None)
    app.state.cap = ApiState.build(settings, config, flows=flows, clock=clock)
    app.include_router(health.router)
    for router in ROUTERS:
        app.include_router(router, responses=PROTECTED_ERRORS)
    errors.install(app)
    app.add_middleware(
        BodyLimit,
        limit=config.max_body_bytes,
        per_path={"/verify": config.max_verify_body_bytes, "/admin/": config.max_admin_body_bytes},
        large_slots=config.max_large_bodies,
    )
    # Outside BodyLimit: an anonymous caller learns nothing but 401, and no body byte is read before it.
    app.add_middleware(AuthGate, routes=[route for router in ROUTERS for route in router.routes])
    app.add_middleware(RequestMetrics)
    _document_token_url(app, config.token_url)
    return app


def app_from_env() -> FastAPI:
    """The uvicorn factory (``--factory deployments.api.app:app_from_env``)."""
    return create_app(Settings.from_env())


def _document_token_url(app: FastAPI, token_url: str) -> None:
    base = app.openapi

    def openapi() -> dict[str, Any]:
        schema = base()
        scheme = schema.get("components", {}).get("securitySchemes", {}).get(OAUTH2_SCHEME_NAME, {})
        flow = scheme.get("flows", {}).get("clientCredentials")
        if flow is not None:
            flow["tokenUrl"] = token_url
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
