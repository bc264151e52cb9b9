"""Local servers that speak the platforms' documented protocols, for the connector tests
(nothing here can reach the platforms). Each replays payloads built from the real ones in
``../shared/fixtures/payloads`` (ids, people and times changed so there are many), and can
drop a connection mid-stream or answer 429 with ``Retry-After``.

Where a detail of a platform is uncertain it is said beside the code. Sources:
- Jetstream: https://github.com/bluesky-social/jetstream (README: ``wantedCollections``,
  ``wantedDids``, ``cursor`` in unix microseconds; account and identity events are sent
  whatever the filter).
- Mastodon: https://docs.joinmastodon.org/methods/streaming/ (``event:``/``data:`` lines,
  ``:thump`` heartbeats), /methods/notifications/, /api/guidelines/#pagination
  (``max_id``/``min_id``; results newest first), /api/rate-limits/ (``X-RateLimit-*``).
- Discord: https://discord.com/developers/docs/events/gateway (opcodes 0, 1, 2, 6, 7, 9,
  10, 11; READY's ``session_id`` and ``resume_gateway_url``; RESUMED), /topics/rate-limits,
  /resources/message#get-channel-messages (``after``, ``limit`` ≤ 100).
- Reddit: https://www.reddit.com/dev/api (listings: ``after``/``before`` fullnames, ``limit``
  ≤ 100, newest first), https://github.com/reddit-archive/reddit/wiki/OAuth2 (token endpoint
  with HTTP basic auth), ``X-Ratelimit-Remaining/Used/Reset`` headers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Response as WsResponse
from websockets.protocol import State

from tests.stack import free_port


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Http:
    """A Starlette app served by uvicorn in this event loop, on a free port."""

    def __init__(self, routes: list[Route]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            Starlette(routes=routes),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=1,  # open event streams end with the server
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task:
            await self.task


@dataclass
class Refusals:
    """Answer the next ``count`` requests to a path with 429 and ``Retry-After``."""

    count: int = 0
    retry_after: int = 2
    at: list[float] = field(default_factory=list)

    def take(self) -> bool:
        if self.count <= 0:
            return False
        self.count -= 1
        self.at.append(time.time())
        return True


# -- Bluesky Jetstream ---------------------------------------------------------------------


class Jetstream:
    """``/subscribe`` over a WebSocket: plays back from ``cursor`` (time_us), then tails."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/subscribe"
        self.frames: list[dict[str, Any]] = []
        self.new = asyncio.Condition()
        self.connections: list[dict[str, list[str]]] = []
        self.drop_after: int | None = None  # frames sent on the next connection, then abort
        self.refuse = Refusals()
        self.server: Any = None

    async def start(self) -> None:
        self.server = await serve(
            self.handler, "127.0.0.1", self.port, process_request=self.process_request
        )

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    def process_request(self, conn: ServerConnection, request: Any) -> WsResponse | None:
        if self.refuse.take():
            return WsResponse(
                429,
                "Too Many Requests",
                Headers({"Retry-After": str(self.refuse.retry_after), "Content-Length": "0"}),
                b"",
            )
        return None

    async def publish(self, frames: list[dict[str, Any]]) -> None:
        async with self.new:
            self.frames += frames
            self.new.notify_all()

    async def handler(self, ws: ServerConnection) -> None:
        q = parse_qs(urlparse(ws.request.path).query)  # type: ignore[union-attr]
        self.connections.append(q)
        collections = set(q.get("wantedCollections", []))
        dids = set(q.get("wantedDids", []))
        cursor = int(q["cursor"][0]) if "cursor" in q else None
        # no cursor (or one in the future): live tail from now
        i = 0 if cursor is not None else len(self.frames)
        sent = 0
        while True:
            async with self.new:
                while i >= len(self.frames):
                    if ws.state is not State.OPEN:
                        return
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.new.wait(), timeout=0.2)
            frame = self.frames[i]
            i += 1
            if cursor is not None and frame["time_us"] < cursor:
                continue
            commit = frame.get("commit") or {}
            if frame["kind"] == "commit" and (
                (collections and commit["collection"] not in collections)
                or (dids and frame["did"] not in dids)
            ):
                continue
            await ws.send(json.dumps(frame))
            sent += 1
            if self.drop_after is not None and sent >= self.drop_after:
                self.drop_after = None
                ws.transport.abort()  # a dropped connection, not a clean close
                return


# -- Mastodon ------------------------------------------------------------------------------


class Mastodon:
    """Notifications: ``GET /api/v1/notifications`` and the ``user/notification`` stream;
    the account's statuses for backfill. Ids are Mastodon-style numeric strings."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.notifications: list[dict[str, Any]] = []  # ascending ids
        self.statuses: list[dict[str, Any]] = []
        self.new = asyncio.Condition()
        self.drop_after: int | None = None
        self.refuse = Refusals()
        self.stream_opened: list[float] = []
        self.http = Http(
            [
                Route("/api/v1/notifications", self.list_notifications),
                Route("/api/v1/streaming/user/notification", self.stream),
                Route("/api/v1/accounts/verify_credentials", self.me),
                Route("/api/v1/accounts/{id}/statuses", self.account_statuses),
            ]
        )
        self.me_account = {
            "id": "1",
            "username": "community",
            "acct": "community",
            "url": "http://social.example/@community",
        }

    def authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": "299",
            "X-RateLimit-Reset": iso(time.time() + 300),
        }

    async def publish(self, items: list[dict[str, Any]]) -> None:
        async with self.new:
            self.notifications += items
            self.new.notify_all()

    @staticmethod
    def page(items: list[dict[str, Any]], q: Any, default: int = 40) -> list[dict[str, Any]]:
        """Mastodon's pagination: ``max_id`` (older than), ``since_id`` (newer than, newest
        first), ``min_id`` (the page immediately newer than); always returned newest first."""
        limit = min(int(q.get("limit", default)), 40)

        def n(s: str) -> int:
            return int(s)

        out = items
        if "max_id" in q:
            out = [i for i in out if n(i["id"]) < n(q["max_id"])]
        if "since_id" in q:
            out = [i for i in out if n(i["id"]) > n(q["since_id"])]
        if "min_id" in q:
            out = [i for i in out if n(i["id"]) > n(q["min_id"])][:limit]
            return list(reversed(out))
        return list(reversed(out))[:limit]

    async def list_notifications(self, request: Request) -> Response:
        if not self.authorized(request):
            return JSONResponse({"error": "The access token is invalid"}, 401)
        if self.refuse.take():
            return JSONResponse(
                {"error": "Too many requests"},
                429,
                headers={"Retry-After": str(self.refuse.retry_after)},
            )
        return JSONResponse(
            self.page(self.notifications, request.query_params), headers=self.headers()
        )

    async def me(self, request: Request) -> Response:
        if not self.authorized(request):
            return JSONResponse({"error": "The access token is invalid"}, 401)
        return JSONResponse(self.me_account, headers=self.headers())

    async def account_statuses(self, request: Request) -> Response:
        if not self.authorized(request):
            return JSONResponse({"error": "The access token is invalid"}, 401)
        return JSONResponse(
            self.page(self.statuses, request.query_params, 20), headers=self.headers()
        )

    async def stream(self, request: Request) -> Response:
        if not self.authorized(request):
            return JSONResponse({"error": "Error while authenticating"}, 401)
        self.stream_opened.append(time.time())
        start = len(self.notifications)

        async def events() -> AsyncIterator[bytes]:
            i, sent = start, 0
            yield b":)\n"  # Mastodon's streaming server opens with a comment
            while True:
                async with self.new:
                    if i >= len(self.notifications):
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self.new.wait(), timeout=1.0)
                if i >= len(self.notifications):
                    yield b":thump\n"
                    continue
                item = self.notifications[i]
                i += 1
                yield b"event: notification\ndata: " + json.dumps(item).encode() + b"\n\n"
                sent += 1
                if self.drop_after is not None and sent >= self.drop_after:
                    self.drop_after = None
                    return  # the server ends the stream mid-way

        return StreamingResponse(events(), media_type="text/event-stream")


# -- Discord -------------------------------------------------------------------------------


class Discord:
    """The gateway (WebSocket) and the REST routes a bot uses: ``/gateway/bot`` and
    ``/channels/{id}/messages``."""

    HEARTBEAT_MS = 1000

    def __init__(self, token: str) -> None:
        self.token = token
        self.gw_port = free_port()
        self.gateway = f"ws://127.0.0.1:{self.gw_port}"
        self.history: dict[str, list[dict[str, Any]]] = {}  # channel -> messages ascending
        self.dispatches: list[dict[str, Any]] = []  # every dispatch ever published
        self.sessions: dict[str, list[dict[str, Any]]] = {}  # session -> its dispatches (s)
        self.new = asyncio.Condition()
        self.drop_after: int | None = None
        self.refuse = Refusals()
        self.opened: list[dict[str, Any]] = []  # identify or resume, per connection
        self.heartbeats = 0
        self.server: Any = None
        self.http = Http(
            [
                Route("/api/v10/gateway/bot", self.gateway_bot),
                Route("/api/v10/channels/{channel}/messages", self.messages),
            ]
        )
        self._sessions = itertools.count(1)

    async def start(self) -> None:
        self.server = await serve(self.handler, "127.0.0.1", self.gw_port)
        await self.http.start()

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()
        await self.http.stop()

    def authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bot {self.token}"

    async def gateway_bot(self, request: Request) -> Response:
        if not self.authorized(request):
            return JSONResponse({"message": "401: Unauthorized", "code": 0}, 401)
        return JSONResponse(
            {
                "url": self.gateway,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14400000,
                    "max_concurrency": 1,
                },
            }
        )

    async def messages(self, request: Request) -> Response:
        if not self.authorized(request):
            return JSONResponse({"message": "401: Unauthorized", "code": 0}, 401)
        if self.refuse.take():
            wait = self.refuse.retry_after
            return JSONResponse(
                {"message": "You are being rate limited.", "retry_after": wait, "global": False},
                429,
                headers={"Retry-After": str(wait), "X-RateLimit-Scope": "user"},
            )
        q = request.query_params
        limit = min(int(q.get("limit", 50)), 100)
        items = self.history.get(request.path_params["channel"], [])
        if "after" in q:
            # the messages immediately after the id (returned newest first; whether Discord
            # orders an ``after`` page newest or oldest first is not stated: the connector
            # sorts)
            items = [m for m in items if int(m["id"]) > int(q["after"])][:limit]
        else:
            items = items[-limit:]
        return JSONResponse(
            list(reversed(items)),
            headers={
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "4",
                "X-RateLimit-Reset-After": "1.0",
                "X-RateLimit-Bucket": "messages",
            },
        )

    async def publish(self, dispatches: list[dict[str, Any]]) -> None:
        async with self.new:
            for d in dispatches:
                if d["t"] == "MESSAGE_CREATE":
                    self.history.setdefault(d["d"]["channel_id"], []).append(d["d"])
                self.dispatches.append(d)
            self.new.notify_all()

    async def handler(self, ws: ServerConnection) -> None:
        await ws.send(json.dumps({"op": 10, "d": {"heartbeat_interval": self.HEARTBEAT_MS}}))
        session: str | None = None
        sent_upto = len(self.dispatches)  # a new session sees what is published from now
        seq = 0
        count = 0

        async def reader() -> None:
            nonlocal session, seq, sent_upto
            async for raw in ws:
                msg = json.loads(raw)
                op = msg["op"]
                if op == 1:
                    self.heartbeats += 1
                    await ws.send(json.dumps({"op": 11}))
                elif op == 2:
                    assert msg["d"]["token"] == self.token, "identify with the bot token"
                    self.opened.append({"op": 2, "intents": msg["d"]["intents"]})
                    session = f"s{next(self._sessions)}"
                    self.sessions[session] = []
                    seq += 1
                    self.sessions[session].append({"upto": sent_upto})
                    await ws.send(
                        json.dumps(
                            {
                                "op": 0,
                                "t": "READY",
                                "s": seq,
                                "d": {
                                    "v": 10,
                                    "session_id": session,
                                    "resume_gateway_url": self.gateway,
                                    "user": {"id": "1", "username": "realconnect", "bot": True},
                                    "guilds": [{"id": "694205451682978886", "unavailable": True}],
                                },
                            }
                        )
                    )
                elif op == 6:
                    d = msg["d"]
                    self.opened.append({"op": 6, "seq": d["seq"], "session_id": d["session_id"]})
                    if d["session_id"] not in self.sessions:
                        await ws.send(json.dumps({"op": 9, "d": False}))
                        continue
                    session, seq = d["session_id"], int(d["seq"])
                    # replay what the session missed after its sequence number
                    log = self.sessions[session]
                    sent_upto = log[0]["upto"] + max(0, seq - 1)
                    await ws.send(json.dumps({"op": 0, "t": "RESUMED", "s": seq, "d": {}}))

        read = asyncio.create_task(reader())
        try:
            while True:
                async with self.new:
                    while session is None or sent_upto >= len(self.dispatches):
                        if read.done():
                            return
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self.new.wait(), timeout=0.2)
                d = self.dispatches[sent_upto]
                sent_upto += 1
                seq += 1
                await ws.send(json.dumps({**d, "s": seq}))
                count += 1
                if self.drop_after is not None and count >= self.drop_after:
                    self.drop_after = None
                    ws.transport.abort()
                    return
        finally:
            read.cancel()

    def forget_sessions(self) -> None:
        """Sessions expire (the gateway then answers a resume with op 9, d=false)."""
        self.sessions.clear()


# -- Reddit --------------------------------------------------------------------------------


class Reddit:
    """The OAuth token endpoint and ``/r/{sub}/new`` and ``/r/{sub}/comments``."""

    def __init__(self, client_id: str, secret: str) -> None:
        self.client_id, self.secret = client_id, secret
        self.things: dict[str, list[dict[str, Any]]] = {}  # "sub/new" -> things ascending
        self.token = "reddit-token-1"
        self.refuse = Refusals()
        self.requests: list[tuple[float, str]] = []
        self.user_agents: set[str] = set()
        self.http = Http(
            [
                Route("/api/v1/access_token", self.access_token, methods=["POST"]),
                Route("/r/{sub}/{what}", self.listing),
            ]
        )

    async def access_token(self, request: Request) -> Response:
        expected = base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse({"message": "Unauthorized", "error": 401}, 401)
        form = await request.form()
        if form.get("grant_type") not in ("password", "client_credentials"):
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        return JSONResponse(
            {
                "access_token": self.token,
                "token_type": "bearer",
                "expires_in": 86400,
                "scope": "read",
            }
        )

    async def listing(self, request: Request) -> Response:
        self.user_agents.add(request.headers.get("user-agent", ""))
        if request.headers.get("authorization") != f"bearer {self.token}":
            return JSONResponse({"message": "Unauthorized", "error": 401}, 401)
        self.requests.append((time.time(), request.url.path))
        if self.refuse.take():
            return JSONResponse(
                {"message": "Too Many Requests", "error": 429},
                429,
                headers={"Retry-After": str(self.refuse.retry_after)},
            )
        key = f"{request.path_params['sub']}/{request.path_params['what']}"
        q = request.query_params
        limit = min(int(q.get("limit", 25)), 100)
        newest_first = list(reversed(self.things.get(key, [])))
        names = [t["data"]["name"] for t in newest_first]
        if "after" in q and q["after"] in names:
            newest_first = newest_first[names.index(q["after"]) + 1 :]
        elif "before" in q and q["before"] in names:
            newest_first = newest_first[: names.index(q["before"])][-limit:]
        page = newest_first[:limit]
        more = len(newest_first) > limit
        return JSONResponse(
            {
                "kind": "Listing",
                "data": {
                    "after": page[-1]["data"]["name"] if page and more else None,
                    "before": None,
                    "dist": len(page),
                    "modhash": None,
                    "children": page,
                },
            },
            headers={
                "x-ratelimit-remaining": "99.0",
                "x-ratelimit-used": "1",
                "x-ratelimit-reset": "300",
            },
        )


# -- payloads from the fixtures ------------------------------------------------------------


def load(fixtures: Path, path: str) -> Any:
    return copy.deepcopy(json.loads((fixtures / path).read_text()))


def b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out
