"""A body limit for the routes whose bodies FastAPI parses (pure ASGI middleware).

The raw-body routes (``/v1/interactions``, ``/v1/sources/...``) read their bodies themselves,
bounded while reading; every other route's body is read here first, up to ``limit`` bytes,
and refused with a 413 problem as soon as it is over (a declared ``Content-Length`` is
refused before a byte is read), so that no parser ever sees an unbounded body.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.problems import Problem

_BODY = (
    b'{"type":"about:blank","title":"Payload too large","status":413,'
    b'"detail":"The body is over the limit of %d bytes."}'
)


class BodyLimit:
    def __init__(self, app: ASGIApp, *, limit: int, exempt: Sequence[str] = ()) -> None:
        self.app, self.limit, self.exempt = app, limit, tuple(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # a disconnect: the app will see it too
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = _BODY % self.limit
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", b"%d" % len(body)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def read_bounded(request: Request, limit: int) -> bytes:
    """A raw-body route's body, refused with a 413 problem as soon as it is over ``limit``
    bytes (a declared ``Content-Length`` before a byte is read)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, "Payload too large", f"The body is over the limit of {limit} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "Payload too large", f"The body is over the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)
