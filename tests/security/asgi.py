"""Driving the API app over raw ASGI, so a test sees how many body bytes the app pulled before it answered."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message

CHUNK = 64 * 1024


@dataclass
class Exchange:
    """One request: the body offered in ``CHUNK`` pieces, the bytes the app actually pulled, the answer."""

    body_size: int
    pulled: int = 0
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


def post(
    app: ASGIApp, path: str, body_size: int, headers: dict[str, str], *, declare_length: bool = True
) -> Exchange:
    """POST ``body_size`` bytes of JSON-looking filler; with ``declare_length`` False it is sent chunked."""
    exchange = Exchange(body_size)
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if declare_length:
        raw.append((b"content-length", str(body_size).encode()))
    scope = scope_of(path, raw)
    filler = b'{"x":"' + b"a" * (CHUNK - 6)

    async def receive() -> Message:
        if exchange.pulled >= body_size:
            return {"type": "http.disconnect"}
        piece = filler[: min(CHUNK, body_size - exchange.pulled)]
        exchange.pulled += len(piece)
        return {"type": "http.request", "body": piece, "more_body": exchange.pulled < body_size}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            exchange.status = message["status"]
            exchange.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            exchange.body += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return exchange


def scope_of(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """An HTTP ``POST`` scope for ``path``."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
