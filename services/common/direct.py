"""Hot routes served without FastAPI's per-request machinery.

FastAPI's router, dependency solver, response-model validation and its exception and
telemetry layers cost about a third of an ingest process's CPU per single-event request:
more than the request's own work. ``DirectRoutes`` (a pure ASGI middleware, added with
``app.add_middleware``) answers a few listed (method, path) routes itself by calling the very
endpoint function the FastAPI route calls: one that takes only the ``Request`` and returns
a pydantic model or raises ``Problem``. The FastAPI route stays declared, so the OpenAPI
document, validation and errors are the same; only the dispatch is shorter. Every other
request goes on to FastAPI unchanged, and an unexpected exception still reaches Starlette's
500 handler outside this middleware.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi import Request
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.problems import Problem, problem_response

Endpoint = Callable[[Request], Awaitable[BaseModel]]
_JSON = b"application/json"


class DirectRoutes:
    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], tuple[Endpoint, int]]):
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hit = self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        if hit is None:
            await self.app(scope, receive, send)
            return
        endpoint, status = hit
        request = Request(scope, receive)
        try:
            model = await endpoint(request)
        except Problem as exc:
            response = problem_response(
                request, exc.status, exc.title, exc.detail, exc.errors, exc.headers
            )
            await response(scope, receive, send)
            return
        body = model.__pydantic_serializer__.to_json(model)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", _JSON), (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})
