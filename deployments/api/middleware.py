"""Pure ASGI middleware: request-body size limit (413) and request metrics by route template.

Metrics use ``cap_api_requests_total{endpoint,status_code}`` and ``cap_api_latency_seconds{endpoint}``
from :mod:`core.metrics`; ``endpoint`` is the matched route template (``/policy/{policy_id}``), never the
raw path, so label cardinality stays bounded.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.metrics import API_LATENCY, API_REQUESTS

UNMATCHED = "unmatched"


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413 before the app sees them; ``per_path`` gives
    exact paths their own limit (``POST /verify`` carries whole proofs, a few KB per screened supplier)."""

    def __init__(self, app: ASGIApp, limit: int, per_path: dict[str, int] | None = None) -> None:
        self.app, self.default, self.per_path = app, limit, dict(per_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope.get("path", ""), self.default)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await _too_large(send, limit)
                return
        await self.app(scope, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


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
