"""Dependency aliases for routes: ``StateDep``, ``NowDep`` and one ``Annotated`` principal per scope.

``Security(..., scopes=[...])`` both enforces the scope and documents it in OpenAPI (OAuth2
client-credentials scheme with the 16 scopes). ``admin:full`` satisfies every scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import OAuth2, SecurityScopes

from core.auth import SCOPE_DESCRIPTIONS, InsufficientScopeError, Principal, Scope, bearer_token
from deployments.api.config import DEFAULT_TOKEN_URL
from deployments.api.state import ApiState

OAUTH2_SCHEME_NAME = "oauth2"


def oauth2_scheme(token_url: str) -> OAuth2:
    flows = OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl=token_url, scopes={str(k): v for k, v in SCOPE_DESCRIPTIONS.items()}
        )
    )
    return OAuth2(
        flows=flows,
        scheme_name=OAUTH2_SCHEME_NAME,
        auto_error=False,
        description="Bearer JWT (RS256/ES256) from the configured issuer",
    )


async def get_state(request: Request) -> ApiState:  # async: no threadpool hop per request
    state: ApiState = request.app.state.cap
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


async def get_now(state: StateDep) -> datetime:
    return state.clock()


NowDep = Annotated[datetime, Depends(get_now)]


# Module-level so OpenAPI documents it; the app factory rewrites its token URL from configuration.
OAUTH2 = oauth2_scheme(DEFAULT_TOKEN_URL)


def authenticate(state: ApiState, authorization: str | None, scopes: Sequence[str]) -> Principal:
    """The caller behind an ``Authorization`` header, holding every scope in ``scopes``.

    Raises AuthError / InsufficientScopeError. Used by :func:`principal` and, before a body is read, by
    :class:`deployments.api.middleware.AuthGate`.
    """
    caller = state.tokens.validate(bearer_token(authorization))
    caller.require(*scopes)
    return caller


async def principal(
    security: SecurityScopes, state: StateDep, authorization: Annotated[str | None, Security(OAUTH2)]
) -> Principal:
    """The caller, holding every scope in ``security``. Raises AuthError / InsufficientScopeError."""
    return authenticate(state, authorization, security.scopes)


def require_any(caller: Principal, *scopes: str) -> None:
    if not any(caller.allows(s) for s in scopes):
        raise InsufficientScopeError(f"token needs one of {', '.join(scopes)}", required=" ".join(scopes))


def _as(*scopes: Scope) -> object:
    return Security(principal, scopes=[s.value for s in scopes])


Caller = Annotated[Principal, Security(principal)]
VerifyRunner = Annotated[Principal, _as(Scope.VERIFY_RUN)]
PolicyCompiler = Annotated[Principal, _as(Scope.POLICY_COMPILE)]
PolicyReader = Annotated[Principal, _as(Scope.POLICY_READ)]
BackupCreator = Annotated[Principal, _as(Scope.BACKUP_CREATE)]
BackupReader = Annotated[Principal, _as(Scope.BACKUP_READ)]
BackupDeleter = Annotated[Principal, _as(Scope.BACKUP_DELETE)]
BackupRestorer = Annotated[Principal, _as(Scope.BACKUP_RESTORE)]
KeyRotator = Annotated[Principal, _as(Scope.KEYS_ROTATE)]
KeyReader = Annotated[Principal, _as(Scope.KEYS_READ)]
KeyRevoker = Annotated[Principal, _as(Scope.KEYS_REVOKE)]


async def metrics_principal(
    security: SecurityScopes, state: StateDep, authorization: Annotated[str | None, Security(OAUTH2)]
) -> Principal | None:
    """Like :func:`principal`, but nobody is asked when ``CAP_METRICS_PUBLIC`` is set."""
    if state.config.metrics_public:
        return None
    return await principal(security, state, authorization)


MetricsReader = Annotated[Principal | None, Security(metrics_principal, scopes=[Scope.METRICS_READ.value])]
