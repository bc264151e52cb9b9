"""A per-caller rate limit for the feeds, console and admin routes (pure ASGI middleware).

Each caller (the SHA-256 of its ``Authorization`` header, else its address) has a token
bucket in this process: ``rate`` requests per second, ``burst`` above it; past it the answer
is a 429 problem with ``Retry-After``. Routes with their own limits (the producer and webhook
routes) and health probes are left alone.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

_BODY = (
    b'{"type":"about:blank","title":"Too many requests","status":429,'
    b'"detail":"Over the rate limit for this caller; retry after the given seconds."}'
)
_MAX_CALLERS = 50_000


class RateLimit:
    def __init__(
        self, app: ASGIApp, *, rate: float, burst: float, exempt: Sequence[str] = ()
    ) -> None:
        self.app, self.rate, self.burst = app, rate, burst
        self.exempt = ("/healthz", *exempt)
        self._buckets: dict[str, tuple[float, float]] = {}

    def _caller(self, scope: Scope) -> str:
        auth = dict(scope.get("headers") or []).get(b"authorization")
        if auth:
            return hashlib.sha256(auth).hexdigest()
        client = scope.get("client")
        return f"addr:{client[0] if client else '?'}"

    def _take(self, who: str) -> float:
        now = time.monotonic()
        tokens, at = self._buckets.get(who, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1:
            if len(self._buckets) >= _MAX_CALLERS and who not in self._buckets:
                self._buckets.clear()  # bounded: a flood of new callers cannot grow it
            self._buckets[who] = (tokens - 1, now)
            return 0.0
        self._buckets[who] = (tokens, now)
        return (1 - tokens) / self.rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        wait = self._take(self._caller(scope))
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
