"""The feed API.

Run: ``realconnect serve feeds`` (uvicorn, port ``REALCONNECT_FEEDS__PORT``, default 8081).
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.cookies import SimpleCookie
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import make_asgi_app
from starlette.types import Scope

from services.common import problems
from services.common.admin import admin_only, protected_docs
from services.common.body_limit import BodyLimit
from services.common.kafka import ProducerSlot, Topics, ensure_topics, new_producer
from services.common.problems import Problem
from services.common.rate_limit import RateLimit
from services.common.redis import Keys, new_redis
from services.common.response_guards import ResponseGuards
from services.common.settings import Settings
from services.common.words import N_
from services.feeds import chat, page
from services.feeds.routes import VERIFIED_BEARER, router
from services.notifier.store import FeedStore


async def identify_person(scope: Scope) -> str | None:
    """The person a request's bearer token or session cookie verifiably names, for the rate
    limit (a made-up value names nobody: the caller is then its address)."""
    store: FeedStore = scope["app"].state.store
    # what is verified here is kept in the request's state for the route's own check
    # (routes.me, page._signed), which then needs no second look-up
    verified = scope.setdefault("state", {})
    headers = dict(scope.get("headers") or [])
    scheme, _, raw = headers.get(b"authorization", b"").partition(b" ")
    if scheme.lower() == b"bearer" and 0 < len(raw) <= 256:
        token = raw.strip().decode("latin-1")
        person = await store.person_for(token)
        if person is not None:
            verified[VERIFIED_BEARER] = (token, person)
            return f"person:{person}"
    cookies = headers.get(b"cookie", b"")
    if cookies and len(cookies) <= 8192:
        sid = SimpleCookie(cookies.decode("latin-1")).get(page.COOKIE)
        if sid is not None and 0 < len(sid.value) <= 128:
            found = await store.session(sid.value)
            if found is not None:
                verified[page.VERIFIED_SESSION] = (sid.value, found)
                return f"person:{found[0]}"
    return None


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings)
        redis = new_redis(settings)
        # replaced by a fresh one after a fatal error (a broker restart can cause one)
        producer = ProducerSlot(
            lambda: new_producer(settings, client_id="realconnect-feeds"),
            ack_timeout_s=settings.kafka.produce_timeout_s,
        )
        await producer.start()
        app.state.redis = redis
        app.state.producer = producer
        app.state.store = FeedStore(redis, Keys(settings), cap=settings.notifier.feed_cap)
        app.state.sse = Counter()  # open live streams per token digest (see routes.stream)
        app.state.chat = chat.ChatUpdates(settings, app.state.store)
        try:
            yield
        finally:
            await app.state.chat.close()
            await producer.stop()
            await redis.aclose()

    app = FastAPI(
        title="realconnect feeds",
        version="0.2.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.topics = Topics(settings)
    problems.install(app)
    app.add_middleware(BodyLimit, limit=settings.http_max_body_bytes)
    RateLimit.install(app, settings, identify=identify_person)
    # outermost: no framing, a CSP on HTML, redirects never built from the Host header
    app.add_middleware(ResponseGuards, base=settings.feeds.public_url)
    app.include_router(router)
    app.include_router(chat.router)
    app.include_router(page.router)
    app.mount(
        "/app/static",
        StaticFiles(directory=Path(page.__file__).parent / "static"),
        name="static",
    )
    _page_errors(app)
    app.mount("/metrics", admin_only(make_asgi_app(), settings))
    protected_docs(app)
    return app


def _page_errors(app: FastAPI) -> None:
    """The web page answers in HTML: a signed-out visitor sees how to sign in (401), and a
    problem on a page route is a page, not problem+json (the API is unchanged)."""
    api_handler = app.exception_handlers[Problem]

    async def signed_out(request: Request, exc: Exception) -> Response:
        return page.error_page(
            request,
            401,
            N_("Please sign in"),
            N_("Open the sign-in link from your latest realconnect email (or ask for one)."),
        )

    async def problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        if request.url.path.startswith("/app"):
            return page.error_page(request, exc.status, exc.title, exc.detail)
        answered = api_handler(request, exc)
        out: Response = await answered if inspect.isawaitable(answered) else answered
        return out

    app.add_exception_handler(page.SignedOut, signed_out)
    app.add_exception_handler(Problem, problem)
