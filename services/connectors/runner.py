"""Runs one connector process: ``realconnect connect SOURCE``."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Final

import httpx
import structlog

from services.common.redis import new_redis
from services.common.settings import Settings
from services.connectors import bluesky, discord, mastodon, reddit
from services.connectors.core import Fatal, Link

log = structlog.get_logger("realconnect.connector")

RUN: Final[dict[str, Callable[[Link], Coroutine[Any, Any, None]]]] = {
    "bluesky": bluesky.run,
    "mastodon": mastodon.run,
    "discord": discord.run,
    "reddit": reddit.run,
}


@asynccontextmanager
async def linked(settings: Settings, source: str) -> AsyncIterator[Link]:
    """A ``Link`` to ingest and Redis for ``source``, closed afterwards."""
    redis = new_redis(settings)
    client = httpx.AsyncClient(timeout=settings.connect.timeout_s)
    try:
        yield Link(settings, source, redis, client)
    finally:
        await client.aclose()
        await redis.aclose()


def fatal_of(e: BaseException) -> Fatal | None:
    if isinstance(e, Fatal):
        return e
    if isinstance(e, BaseExceptionGroup):
        for inner in e.exceptions:
            found = fatal_of(inner)
            if found:
                return found
    return None


@asynccontextmanager
async def metrics_server(settings: Settings) -> AsyncIterator[None]:
    """``/metrics`` behind the admin token (master or ``metrics`` scope), as on every other
    service, and ``/healthz`` without one, on ``CONNECT__METRICS_HOST:PORT`` (0: none)."""
    if not settings.connect.metrics_port:
        yield
        return
    from aiohttp import web
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from services.common.admin import UNAUTHENTICATED, bearer_valid

    async def metrics(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "").encode("latin-1", "replace")
        if not bearer_valid(header, settings, "metrics"):
            return web.Response(
                body=UNAUTHENTICATED,
                status=401,
                content_type="application/problem+json",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return web.Response(body=generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=1024)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.connect.metrics_host, settings.connect.metrics_port)
        await site.start()
        yield
    finally:
        await runner.cleanup()


async def connect(settings: Settings, source: str) -> int:
    """Run until SIGTERM/SIGINT (0) or a configuration error (78, EX_CONFIG)."""
    async with metrics_server(settings), linked(settings, source) as link:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, link.stop.set)
        reporter = asyncio.create_task(link.report())
        main = asyncio.create_task(RUN[source](link))
        stopped = asyncio.create_task(link.stop.wait())
        try:
            await asyncio.wait({main, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not main.done():
                main.cancel()
            try:
                await main
            except asyncio.CancelledError:
                pass
            except BaseException as e:
                fatal = fatal_of(e)
                if fatal is None:
                    raise
                log.error("connector cannot run", source=source, reason=str(fatal))
                link.state = f"stopped: {fatal}"
                return 78
            return 0
        finally:
            link.stop.set()
            if not link.state.startswith("stopped"):
                link.state = "stopped"
            reporter.cancel()
            await link.publish()
            stopped.cancel()
