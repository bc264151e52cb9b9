"""A per-caller rate limit for the feeds, console and admin routes (pure ASGI middleware).

**Who a caller is** comes only from what the server has verified, never from what the caller
merely sends: a valid admin token (master or scoped), else a person the service recognises
(``identify``: on feeds, a live person token or session), else the client's address as the
connection (or the deployment's trusted proxy, ``HTTP_TRUSTED_PROXIES``) reports it; an IPv6
address counts by its /64. A made-up bearer value is just the caller's address: a new value
per request escapes nothing.

Each caller has a token bucket in this process: ``rate`` requests per second, ``burst`` above
it; past it the answer is a 429 problem with ``Retry-After``. Routes with their own limits
(the producer and webhook routes) and health probes are left alone.

**Bounded memory an attacker cannot flush**: at most ``max_callers`` buckets. A bucket that
has refilled to its burst says nothing a missing bucket would not, so those go first (oldest
first); if every bucket is still in use, a *new* caller is refused (429) rather than anyone's
bucket being dropped. Filling the table takes ``max_callers`` verified principals or
addresses, each spending within the time a bucket takes to refill.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.admin import bearer_principal
from services.common.http_server import client_key

log = structlog.get_logger(__name__)

_BODY = (
    b'{"type":"about:blank","title":"Too many requests","status":429,'
    b'"detail":"Over the rate limit for this caller; retry after the given seconds."}'
)
MAX_CALLERS = 50_000

#: (scope) -> a verified principal ("person:<id>"), or None
Identify = Callable[[Scope], Awaitable[str | None]]


class Buckets:
    """Token buckets per caller, bounded (pure: time is passed in)."""

    def __init__(self, rate: float, burst: float, max_callers: int = MAX_CALLERS) -> None:
        self.rate, self.burst, self.max_callers = rate, burst, max_callers
        #: caller -> (tokens, at), least recently updated first
        self._b: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._b)

    def _full_at(self, tokens: float, at: float) -> float:
        return at + (self.burst - tokens) / self.rate

    def _make_room(self, now: float) -> bool:
        """Drop refilled buckets, oldest first, until one slot is free; False if none is."""
        while len(self._b) >= self.max_callers:
            oldest, (tokens, at) = next(iter(self._b.items()))
            if self._full_at(tokens, at) > now:
                return False  # the least recently used bucket is still in use: all are
            del self._b[oldest]
        return True

    def take(self, who: str, now: float) -> float:
        """Take one token for ``who``: 0 if granted, else the seconds until one is there."""
        found = self._b.get(who)
        if found is None:
            if not self._make_room(now):
                return max(1.0 / self.rate, 1.0)
            tokens = self.burst
        else:
            tokens = min(self.burst, found[0] + (now - found[1]) * self.rate)
        if tokens >= 1:
            self._b[who] = (tokens - 1, now)
            self._b.move_to_end(who)
            return 0.0
        self._b[who] = (tokens, now)
        self._b.move_to_end(who)
        return (1 - tokens) / self.rate


class RateLimit:
    @classmethod
    def install(
        cls,
        app: Any,
        settings: Any,
        *,
        exempt: Sequence[str] = (),
        identify: Identify | None = None,
    ) -> None:
        """Add the limit to a FastAPI/Starlette ``app`` with the deployment's settings."""
        app.add_middleware(
            cls,
            settings=settings,
            rate=settings.http_rate_per_s,
            burst=settings.http_burst,
            max_callers=settings.http_rate_max_callers,
            exempt=exempt,
            identify=identify,
        )

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Any,
        rate: float,
        burst: float,
        exempt: Sequence[str] = (),
        identify: Identify | None = None,
        max_callers: int = MAX_CALLERS,
    ) -> None:
        self.app, self.settings, self.identify = app, settings, identify
        self.exempt = ("/healthz", *exempt)
        self.buckets = Buckets(rate, burst, max_callers)

    async def caller(self, scope: Scope) -> str:
        headers = dict(scope.get("headers") or [])
        admin = bearer_principal(headers.get(b"authorization", b""), self.settings)
        if admin is not None:
            return admin
        if self.identify is not None:
            try:
                person = await self.identify(scope)
            except Exception as exc:  # Redis down: the address still limits
                log.warning("rate_limit_identify_failed", error=repr(exc))
                person = None
            if person is not None:
                return person
        client = scope.get("client")
        return f"addr:{client_key(client[0]) if client else '?'}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(await self.caller(scope), time.monotonic())
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", b"%d" % len(_BODY)),
                    (b"retry-after", b"%d" % max(1, math.ceil(wait))),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _BODY})
