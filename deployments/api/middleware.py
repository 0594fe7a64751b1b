"""Pure ASGI middleware: authentication before the body (:class:`AuthGate`), body limits enforced while
streaming (:class:`BodyLimit`: 413, 503 ``busy``) and request metrics by route template.

Metrics use ``cap_api_requests_total{endpoint,status_code}`` and ``cap_api_latency_seconds{endpoint}``
from :mod:`core.metrics`; ``endpoint`` is the matched route template (``/policy/{policy_id}``), never the
raw path, so label cardinality stays bounded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import CapError
from core.metrics import API_LATENCY, API_REQUESTS
from deployments.api.config import DEFAULT_MAX_LARGE_BODIES
from deployments.api.deps import authenticate, principal
from deployments.api.errors import cap_error

UNMATCHED = "unmatched"
DEFAULT_LARGE_BODY_BYTES = 1024 * 1024  # a body past this needs a large-body slot (see BodyLimit)


class BodyRefusedError(HTTPException):
    """A body refused while it streams (413 over the limit, 503 when too many large bodies are in flight).

    An ``HTTPException`` because FastAPI re-raises those from a body read instead of turning them into 400;
    :func:`deployments.api.errors.http_error` renders ``code`` and ``details``.
    """

    def __init__(self, status: int, code: str, message: str, **details: object) -> None:
        headers = {"Retry-After": "1"} if status == 503 else None
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code, self.details = code, details


class BodyLimit:
    """Enforces a route's body limit while the body streams, and bounds the large bodies read at once.

    A declared ``Content-Length`` over the limit is refused before any byte is read; a chunked body is
    refused at the chunk that crosses the limit, so no more than ``limit`` + one chunk is ever held. A body
    that grows past ``large`` bytes needs one of ``large_slots`` per worker (503 ``busy`` when none is free).
    ``per_path`` gives paths their own limit: exact, or a prefix ending in ``/`` (``POST /verify`` carries
    whole proofs; ``/admin/`` routes take a few parameters).
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        per_path: dict[str, int] | None = None,
        *,
        large: int = DEFAULT_LARGE_BODY_BYTES,
        large_slots: int = DEFAULT_MAX_LARGE_BODIES,
    ) -> None:
        self.app, self.default, self.per_path = app, limit, dict(per_path or {})
        self.large, self.large_slots, self.large_in_flight = large, large_slots, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        counted, held = 0, False

        async def limited() -> Message:
            nonlocal counted, held
            message = await receive()
            if message["type"] == "http.request":
                counted += len(message.get("body", b""))
                if counted > limit:
                    raise BodyRefusedError(
                        413, "body_too_large", f"request body exceeds {limit} bytes", limit=limit
                    )
                if counted > self.large and not held:
                    held = self._take_large_slot()
            return message

        try:
            await self.app(scope, limited, send)
        finally:
            if held:
                self.large_in_flight -= 1

    def limit_for(self, path: str) -> int:
        """An exact ``per_path`` entry, else the longest entry ending in ``/`` that prefixes ``path``."""
        if path in self.per_path:
            return self.per_path[path]
        prefixes = [p for p in self.per_path if p.endswith("/") and path.startswith(p)]
        return self.per_path[max(prefixes, key=len)] if prefixes else self.default

    def _take_large_slot(self) -> bool:
        """One event loop per worker, no await in between: a plain counter is race-free here."""
        if self.large_in_flight >= self.large_slots:
            raise BodyRefusedError(
                503,
                "busy",
                "too many large request bodies in flight; retry shortly",
                large_body_bytes=self.large,
                slots=self.large_slots,
            )
        self.large_in_flight += 1
        return True


async def _too_large(send: Send, limit: int) -> None:
    payload = json.dumps(
        {
            "error": "body_too_large",
            "message": f"request body exceeds {limit} bytes",
            "details": {"limit": limit},
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class AuthGate:
    """Checks the bearer token and the route's scopes from the headers before the body is read.

    FastAPI reads and parses a route's body before it resolves the route's dependencies, so without this an
    anonymous caller could make the server buffer and parse a 32 MiB body before the 401. For every route that
    takes a body and depends on :func:`deployments.api.deps.principal`, the same check runs here first and a
    refusal is answered without touching ``receive``; the route's own dependency then finds the token cached.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.gated = [(route, scopes) for route in routes if (scopes := gated_scopes(route)) is not None]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gated = self._gated(scope) if scope["type"] == "http" else None
        if gated is not None:
            route, scopes = gated
            headers = dict(scope.get("headers") or [])
            authorization = headers.get(b"authorization", b"").decode("latin-1") or None
            try:
                authenticate(scope["app"].state.cap, authorization, scopes)
            except CapError as exc:
                scope["route"] = route  # metrics label the refusal by its route template
                response = await cap_error(Request(scope), exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _gated(self, scope: Scope) -> tuple[BaseRoute, tuple[str, ...]] | None:
        for route, scopes in self.gated:
            if route.matches(scope)[0] is Match.FULL:
                return route, scopes
        return None


def gated_scopes(route: BaseRoute) -> tuple[str, ...] | None:
    """The scopes a body-taking route requires of its caller; None for routes without a body or a caller."""
    if not isinstance(route, APIRoute) or not route.dependant.body_params:
        return None
    return required_scopes(route.dependant, ())


def required_scopes(dependant: Dependant, parent: tuple[str, ...]) -> tuple[str, ...] | None:
    """The scopes ``principal`` is asked for in ``dependant``'s tree; None if it is absent."""
    scopes = (*parent, *(dependant.own_oauth_scopes or ()))
    if dependant.call is principal:
        return scopes
    found = [s for d in dependant.dependencies if (s := required_scopes(d, scopes)) is not None]
    return tuple(dict.fromkeys(s for group in found for s in group)) if found else None


class RequestMetrics:
    """Counts and times every HTTP request by route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            endpoint = _template(scope)
            API_REQUESTS.labels(endpoint=endpoint, status_code=str(status)).inc()
            API_LATENCY.labels(endpoint=endpoint).observe(time.perf_counter() - start)


def _template(scope: dict[str, Any]) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED
