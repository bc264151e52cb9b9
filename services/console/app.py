"""The operator console: a page at ``/`` with live pipeline counts.

Run: ``realconnect serve console`` (uvicorn, port ``REALCONNECT_CONSOLE__PORT``, default 8082).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from redis.exceptions import RedisError

from services.common import problems
from services.common.problems import Problem
from services.common.redis import new_redis
from services.common.settings import Settings
from services.console.metrics import PipelineStats

STATIC = Path(__file__).parent / "static"
log = structlog.get_logger(__name__)


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

    app = FastAPI(title="realconnect console", version="0.1.0", lifespan=lifespan)
    problems.install(app)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get(
        "/api/stats",
        summary="Live pipeline counts",
        responses={503: {"description": "Kafka or Redis unreachable (problem+json)"}},
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

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
