"""Request bodies parsed with a bounded nesting depth, whatever the process's recursion limit is.

FastAPI parses a JSON body with ``Request.json()``; the C parser recurses once per bracket, so where the
recursion limit is raised (a library may do it on import) a bracket bomb overflows the C stack and kills
the worker. Routes built with :class:`BoundedJSONRoute` refuse such a body as malformed JSON (422) first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from core.documents import loads_bounded


class BoundedJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_bounded(await self.body())
        return self._json


class BoundedJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            return await handler(BoundedJSONRequest(request.scope, request.receive))

        return bounded
