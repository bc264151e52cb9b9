"""The operator console: the live funnel, rates, lag, dead letters and health, on one page.

Run: ``realconnect serve console`` (uvicorn, port ``REALCONNECT_CONSOLE__PORT``, default 8082).
The page is public; its data (``/api/*``) needs the admin bearer token, which the page asks
for once and keeps in the browser's session storage. Everything it loads is served here: it
works with no internet.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import structlog
from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import make_asgi_app
from redis.exceptions import RedisError

from services.common import problems
from services.common.admin import admin, admin_only, protected_docs
from services.common.body_limit import BodyLimit
from services.common.problems import Problem
from services.common.rate_limit import RateLimit
from services.common.redis import new_redis
from services.common.response_guards import ResponseGuards
from services.common.settings import Settings
from services.console.metrics import PipelineStats

STATIC = Path(__file__).parent / "static"
#: how long one explanation may read the matcher's changelogs (a request is bounded)
EXPLAIN_TIMEOUT_S = 20.0
#: explanations read at once (each reads whole changelog partitions)
EXPLAIN_CONCURRENCY = 4
log = structlog.get_logger(__name__)
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    401: {"description": "Admin token required"},
    503: {"description": "Kafka or Redis unreachable (problem+json)"},
}


@asynccontextmanager
async def answering(nothing: str) -> AsyncIterator[None]:
    """An explanation's errors as problems: a question it cannot answer (``ExplainError``:
    unknown, forgotten, no state) 404 with ``nothing``; Kafka or Redis unreachable 503."""
    from services.explain import ExplainError

    try:
        yield
    except ExplainError as exc:
        raise Problem(404, nothing, str(exc)) from exc
    except (KafkaError, RedisError) as exc:
        raise Problem(
            503, "Pipeline state unavailable", repr(exc), headers={"Retry-After": "2"}
        ) from exc


def _explanation_routes(app: FastAPI, settings: Settings) -> None:
    """Why and why not for operators (issue 39): one pair's record, and the pair inspector's
    person (their circle, the decision about each partner); behind the admin token."""
    # each explanation reads changelog partitions: a few at a time, the rest wait their turn
    explaining = asyncio.Semaphore(EXPLAIN_CONCURRENCY)

    @app.get(
        "/api/explain",
        summary="Why a pair was suggested, or why not (realconnect explain)",
        responses={
            **_UNAVAILABLE,
            404: {"description": "No such pair, or a person was forgotten (problem+json)"},
        },
        dependencies=[Depends(admin("console"))],
    )
    async def api_explain(
        a: Annotated[str, Query(min_length=1, max_length=256)],
        b: Annotated[str, Query(min_length=1, max_length=256)],
    ) -> dict[str, Any]:
        from services.explain import explain

        if a.strip() == b.strip():
            raise Problem(422, "Not a pair", "A pair is two different people.")
        async with explaining, answering("Nothing to explain"):
            got = await explain(settings, a, b, timeout=EXPLAIN_TIMEOUT_S)
        return got.to_dict()

    @app.get("/inspect", include_in_schema=False)
    async def inspect_page() -> FileResponse:
        return FileResponse(STATIC / "inspect.html")

    @app.get(
        "/api/circle",
        summary="A person's circle and the decision about each partner (the pair inspector)",
        responses={
            **_UNAVAILABLE,
            404: {"description": "No circle kept, or the person was forgotten (problem+json)"},
        },
        dependencies=[Depends(admin("console"))],
    )
    async def api_circle(
        person: Annotated[str, Query(min_length=1, max_length=256)],
    ) -> dict[str, Any]:
        from services.explain import circle_of

        async with explaining, answering("Nothing to inspect"):
            digest, partners = await circle_of(settings, person, timeout=EXPLAIN_TIMEOUT_S)
        return {
            "person": person.strip(),
            "partners_seen": digest.partners_seen,
            "exchanges": digest.exchanges,
            "partners": [p.to_dict() for p in partners],
        }


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = new_redis(settings)
        stats = PipelineStats(settings, redis)
        await stats.start()
        app.state.stats = stats
        try:
            yield
        finally:
            await stats.stop()
            await redis.aclose()

    app = FastAPI(
        title="realconnect console",
        version="0.2.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    problems.install(app)
    app.add_middleware(BodyLimit, limit=settings.http_max_body_bytes)
    RateLimit.install(app, settings)
    # outermost: no framing, a CSP on HTML, redirects never built from the Host header
    app.add_middleware(ResponseGuards, base=None)

    @app.get("/healthz", summary="Liveness (no state, no token)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get(
        "/api/stats",
        summary="Live pipeline figures",
        responses=_UNAVAILABLE,
        dependencies=[Depends(admin("console"))],
    )
    async def api_stats(request: Request) -> dict[str, Any]:
        try:
            return await request.app.state.stats.snapshot()  # type: ignore[no-any-return]
        except (KafkaError, RedisError) as exc:
            log.warning("stats_unavailable", error=repr(exc))
            raise Problem(
                503,
                "Pipeline state unavailable",
                f"Kafka or Redis did not answer: {exc!r}",
                headers={"Retry-After": "2"},
            ) from exc

    @app.get(
        "/api/dead-letters",
        summary="The latest dead letters, with their payloads",
        responses=_UNAVAILABLE,
        dependencies=[Depends(admin("console"))],
    )
    async def api_dead_letters(
        request: Request, limit: Annotated[int, Query(ge=1, le=200)] = 25
    ) -> list[dict[str, Any]]:
        try:
            return await request.app.state.stats.dead_letters(limit)  # type: ignore[no-any-return]
        except KafkaError as exc:
            raise Problem(
                503, "Kafka unavailable", repr(exc), headers={"Retry-After": "2"}
            ) from exc

    _explanation_routes(app, settings)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/metrics", admin_only(make_asgi_app(), settings))
    protected_docs(app)
    return app
