"""DirectRoutes answers its routes exactly as FastAPI does (status, headers, body; errors as
problem+json), and ingest's direct routes are the very endpoints of its FastAPI routes."""

from __future__ import annotations

import httpx
import orjson
from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel

from services.common import problems
from services.common.direct import DirectRoutes
from services.common.problems import Problem
from services.common.settings import Settings


class Echo(BaseModel):
    name: str
    sizes: list[int]
    note: str | None = None


async def echo(request: Request) -> Echo:
    body = orjson.loads(await request.body())
    if body.get("fail"):
        raise Problem(
            409, "Conflict", "Asked to fail.", errors=[{"loc": ["fail"]}], headers={"X-A": "1"}
        )
    if body.get("crash"):
        raise RuntimeError("boom")
    return Echo(name=body["name"], sizes=[len(body["name"])], note="é ✓")


def build(direct: bool) -> FastAPI:
    app = FastAPI()
    problems.install(app)
    app.post("/v1/echo", status_code=202, response_model=Echo)(echo)
    if direct:
        app.add_middleware(DirectRoutes, routes={("POST", "/v1/echo"): (echo, 202)})
    return app


async def answers(app: FastAPI, body: dict[str, object], method: str = "POST") -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, "/v1/echo", json=body)


async def test_direct_answers_equal_fastapi_answers() -> None:
    for body, method in [
        ({"name": "ada"}, "POST"),
        ({"fail": True}, "POST"),
        ({"crash": True}, "POST"),
        ({"name": "ada"}, "GET"),  # not a direct route: FastAPI's 405
    ]:
        via_fastapi = await answers(build(direct=False), body, method)
        via_direct = await answers(build(direct=True), body, method)
        assert via_direct.status_code == via_fastapi.status_code, body
        assert via_direct.content == via_fastapi.content, body
        for header in ("content-type", "content-length", "x-a", "allow"):
            assert via_direct.headers.get(header) == via_fastapi.headers.get(header), (body, header)
    ok = await answers(build(direct=True), {"name": "ada"})
    assert ok.status_code == 202 and ok.json() == {"name": "ada", "sizes": [3], "note": "é ✓"}


def test_ingest_direct_routes_are_the_fastapi_endpoints() -> None:
    from services.ingest.app import create_app
    from services.ingest.routes import DIRECT, router

    declared = {
        (method, route.path): (route.endpoint, route.status_code)
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    app = create_app(Settings())
    documented = app.openapi()["paths"]
    assert DIRECT
    for (method, path), (endpoint, status) in DIRECT.items():
        assert declared[method, path] == (endpoint, status), path
        assert str(status) in documented[path][method.lower()]["responses"], path
    assert any(m.cls is DirectRoutes for m in app.user_middleware)
