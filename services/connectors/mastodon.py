"""Mastodon: the streaming API (server-sent events) with a REST catch-up on every
(re)connect, read with ``httpx`` and ``httpx-sse``.

Mastodon's streams do not resume, so each connect opens the stream first, then reads what
was missed from the matching REST timeline (``min_id`` = the last id forwarded, pages of 40
in ascending order), then forwards the stream's events that are newer than that. The
notification or status JSON is forwarded as the server sent it.
https://docs.joinmastodon.org/methods/streaming/ and /api/guidelines/#pagination
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import httpx
import orjson
import structlog
from httpx_sse import SSEError, aconnect_sse

from services.common.backoff import Backoff, retry_after
from services.connectors.core import Fatal, Link, epoch_of, get_json, id_order

log = structlog.get_logger("realconnect.connector.mastodon")

PAGE = 40  # Mastodon's maximum for timelines and notifications


@dataclass(frozen=True)
class Stream:
    name: str
    stream_path: str
    event: str  # the SSE event that carries a payload: "notification" or "update"
    rest_path: str
    stream_params: dict[str, str] = field(default_factory=dict)
    rest_params: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "notification" if self.event == "notification" else "status"


def stream(name: str) -> Stream:
    """``notifications``, ``local``, ``list:<id>`` or ``hashtag:<tag>``."""
    what, _, arg = name.partition(":")
    if what == "notifications" and not arg:
        return Stream(name, "/api/v1/streaming/user/notification", "notification",
                      "/api/v1/notifications")  # fmt: skip
    if what == "local" and not arg:
        return Stream(name, "/api/v1/streaming/public/local", "update", "/api/v1/timelines/public",
                      rest_params={"local": "true"})  # fmt: skip
    if what == "list" and arg:
        return Stream(name, "/api/v1/streaming/list", "update", f"/api/v1/timelines/list/{arg}",
                      stream_params={"list": arg})  # fmt: skip
    if what == "hashtag" and arg:
        return Stream(name, "/api/v1/streaming/hashtag", "update", f"/api/v1/timelines/tag/{arg}",
                      stream_params={"tag": arg})  # fmt: skip
    raise Fatal(f"unknown Mastodon stream {name!r}: notifications, local, list:<id>, hashtag:<tag>")


def pace(r: httpx.Response) -> float | None:
    """Seconds to wait when ``X-RateLimit-Remaining`` says the budget is spent (Mastodon:
    300 calls per 5 minutes per account; ``X-RateLimit-Reset`` is an ISO 8601 time)."""
    remaining, reset = r.headers.get("x-ratelimit-remaining"), r.headers.get("x-ratelimit-reset")
    if remaining is None or reset is None:
        return None
    try:
        if float(remaining) > 1:
            return None
        until = datetime.fromisoformat(reset.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (until - datetime.now(UTC)).total_seconds())


class Mastodon:
    def __init__(self, link: Link, client: httpx.AsyncClient) -> None:
        cfg = link.settings.connect.mastodon
        if not cfg.url or not (cfg.token and cfg.token.get_secret_value()):
            raise Fatal("set REALCONNECT_CONNECT__MASTODON__URL and __TOKEN")
        self.link = link
        self.client = client
        self.base = cfg.url.rstrip("/")
        self.streaming = (cfg.streaming_url or cfg.url).rstrip("/")
        self.host = urlparse(self.base).netloc
        self.headers = {
            "authorization": f"Bearer {cfg.token.get_secret_value()}",
            "user-agent": link.settings.connect.user_agent,
        }

    async def get_object(self, path: str) -> dict[str, Any]:
        body, _ = await get_json(
            self.link, self.client, self.base + path, headers=self.headers, pace=pace
        )
        if not isinstance(body, dict):
            raise Fatal(f"{path} answered {type(body).__name__}, not an object")
        return body

    async def page(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        body, _ = await get_json(
            self.link, self.client, self.base + path, params=params, headers=self.headers, pace=pace
        )
        if not isinstance(body, list):
            raise Fatal(f"{path} answered {type(body).__name__}, not a list")
        return body

    async def send(self, s: Stream, item_id: str, body: bytes, created_at: str | None) -> None:
        at = epoch_of(created_at)
        delivery = f"mastodon:{self.host}:{s.kind}:{item_id}"
        await self.link.forward(body, delivery, at=at, origin=self.host)
        await self.link.save(**{f"since_id:{s.name}": item_id})

    async def catch_up(self, s: Stream) -> str | None:
        """Forward what the REST timeline has after the stored id; the new position."""
        pos = await self.link.position(f"since_id:{s.name}")
        if pos is None:  # first start: from now on (``realconnect backfill`` reads history)
            newest = await self.page(s.rest_path, {**s.rest_params, "limit": 1})
            if newest:
                pos = str(newest[0]["id"])
                await self.link.save(**{f"since_id:{s.name}": pos})
            return pos
        self.link.state = "catching up"
        while True:
            items = await self.page(s.rest_path, {**s.rest_params, "min_id": pos, "limit": PAGE})
            fresh = sorted(
                (i for i in items if id_order(str(i["id"])) > id_order(pos)),
                key=lambda i: id_order(str(i["id"])),
            )
            for item in fresh:
                await self.send(s, str(item["id"]), orjson.dumps(item), item.get("created_at"))
                pos = str(item["id"])
            if len(items) < PAGE or not fresh:
                return pos

    async def follow(self, s: Stream) -> None:
        c = self.link.settings.connect
        backoff = Backoff(c.backoff_s, c.backoff_max_s)
        timeout = httpx.Timeout(c.timeout_s, read=max(90.0, c.timeout_s))
        first = True
        while not self.link.stop.is_set():
            if not first:
                self.link.reconnected()
            first = False
            self.link.state = "connecting"
            try:
                async with aconnect_sse(
                    self.client,
                    "GET",
                    self.streaming + s.stream_path,
                    params=s.stream_params,
                    headers=self.headers,
                    timeout=timeout,
                ) as source:
                    r = source.response
                    if r.status_code in (401, 403):
                        raise Fatal(f"the streaming API refused the token ({r.status_code})")
                    if r.status_code != 200:
                        wait = retry_after(r.headers) or backoff.next()
                        if r.status_code == 429:
                            self.link.throttled()
                        log.warning("stream refused", status=r.status_code, retry_in_s=wait)
                        self.link.state = "backoff"
                        await self.link.sleep(wait)
                        continue
                    pos = await self.catch_up(s)
                    self.link.state = "live"
                    log.info("stream open", stream=s.name, since_id=pos)
                    async for sse in source.aiter_sse():
                        if sse.event != s.event:
                            continue  # delete, status.update, filters_changed, ...
                        item = orjson.loads(sse.data)
                        item_id = str(item["id"])
                        if pos is None or id_order(item_id) > id_order(pos):
                            await self.send(s, item_id, sse.data.encode(), item.get("created_at"))
                            pos = item_id
                        backoff.reset()
                        if self.link.stop.is_set():
                            return
                # the server ended the stream: reconnect (after a jittered pause, so that a
                # server that keeps closing at once is not hammered)
                await self.link.sleep(backoff.next())
            except (httpx.HTTPError, SSEError) as e:
                wait = backoff.next()
                log.warning("stream lost", stream=s.name, error=repr(e), retry_in_s=wait)
                self.link.state = "backoff"
                await self.link.sleep(wait)


async def run(link: Link) -> None:
    cfg = link.settings.connect.mastodon
    streams = [stream(n) for n in cfg.streams]
    async with httpx.AsyncClient(timeout=link.settings.connect.timeout_s) as client:
        m = Mastodon(link, client)
        async with asyncio.TaskGroup() as tg:
            for s in streams:
                tg.create_task(m.follow(s))
