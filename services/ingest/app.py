"""The ingest HTTP service.

Run: ``realconnect serve ingest`` (uvicorn, port ``REALCONNECT_INGEST__PORT``, default 8080).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import make_asgi_app

from schemas.events import Interaction
from services.common import problems
from services.common.admin import admin_only, protected_docs
from services.common.body_limit import BodyLimit
from services.common.dedupe import EventDedupe
from services.common.direct import DirectRoutes
from services.common.gc_tuning import tune_gc
from services.common.kafka import ProducerSlot, Topics, ensure_topics, new_producer
from services.common.rate_limit import RateLimit
from services.common.redis import Keys, new_redis
from services.common.response_guards import ResponseGuards
from services.common.settings import Settings
from services.ingest import people, producers, webhooks
from services.ingest.accepted import AcceptedLog
from services.ingest.guards import Guards
from services.ingest.producers import ProducerAuth
from services.ingest.routes import DIRECT, router


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings)
        tune_gc(settings.gc_thresholds)
        # replaced by a fresh one after a fatal error (a broker restart can cause one)
        producer = ProducerSlot(
            lambda: new_producer(
                settings, client_id="realconnect-ingest", linger_ms=settings.ingest.linger_ms
            ),
            ack_timeout_s=settings.kafka.produce_timeout_s,
        )
        await producer.start()
        redis = new_redis(settings)
        keys = Keys(settings)
        app.state.producer = producer
        app.state.redis = redis
        app.state.guards = Guards(redis, keys)
        app.state.keys = keys
        app.state.dedupe = dedupe = EventDedupe(
            redis, keys, window_s=settings.ingest.event_dedupe_days * 86400
        )
        app.state.accepted = AcceptedLog(redis, keys, dedupe)
        app.state.producer_auth = ProducerAuth(
            redis,
            keys.producers,
            allow_dev=settings.env != "prod",
            rate=settings.ingest.producer_rate_per_s,
            burst=settings.ingest.producer_burst,
        )
        try:
            yield
        finally:
            await producer.stop()  # flushes what is in flight
            await redis.aclose()

    app = FastAPI(
        title="realconnect ingest",
        version="0.2.0",
        description="Interaction events in; canonical interactions onto Kafka, keyed by pair.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.topics = Topics(settings)
    problems.install(app)
    app.include_router(router)
    app.add_middleware(DirectRoutes, routes=DIRECT)
    # the raw-body routes bound their own reads (larger limits, streamed)
    app.add_middleware(
        BodyLimit,
        limit=settings.http_max_body_bytes,
        exempt=("/v1/interactions", "/v1/sources/"),
    )
    # the admin routes (people, producers, docs, metrics); producers and webhooks have their own
    RateLimit.install(app, settings, exempt=("/v1/interactions", "/v1/sources/"))
    # outermost: no framing, a CSP on HTML, redirects never built from the Host header
    app.add_middleware(ResponseGuards, base=None)
    app.include_router(webhooks.router)
    app.include_router(people.router)
    app.include_router(producers.router)
    app.mount("/metrics", admin_only(make_asgi_app(), settings))
    protected_docs(app)
    _document_interaction(app)
    return app


def _document_interaction(app: FastAPI) -> None:
    """The raw-body routes refer to the Interaction schema; add it to the components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["Interaction"] = Interaction.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            schemes = schema["components"].setdefault("securitySchemes", {})
            schemes["ProducerToken"] = {
                "type": "http",
                "scheme": "bearer",
                "description": "A trusted producer's token (POST /v1/producers, admin).",
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def app_from_env() -> FastAPI:
    """The app for settings read from the environment (uvicorn's factory, one per worker)."""
    return create_app(Settings())
