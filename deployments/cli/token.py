"""``cap token``: a bearer token from the development issuer, printed alone on stdout (CAP_ENV=dev only)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from core.dev_issuer import DevIssuer
from deployments.cli.output import settings


def token(
    scope: Annotated[str, typer.Option(help="Space-separated scopes, e.g. 'verify:run policy:read'.")],
    ttl: Annotated[
        int, typer.Option(min=1, help="Lifetime in seconds (at most 86400: the API refuses more).")
    ] = 3600,
    subject: Annotated[str, typer.Option(help="The token's sub claim.")] = "dev-user",
) -> None:
    """Mint a token for the local development issuer (created on first use)."""
    issuer = DevIssuer.for_settings(settings()).ensure()
    print(issuer.mint(scope.split(), ttl=ttl, now=int(time.time()), subject=subject))
