"""Bluesky: Jetstream (https://github.com/bluesky-social/jetstream), the firehose as JSON
over a WebSocket, read with ``websockets``.

Filtered at the source with ``wantedCollections`` and ``wantedDids``; every commit frame of
a wanted collection is forwarded as received. The cursor is the ``time_us`` of the last
frame handled, stored after ingest answered; a reconnect asks for playback from a few
seconds before it (Jetstream's advice for gapless playback).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import orjson
import structlog
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

from services.common.backoff import Backoff, retry_after
from services.connectors.core import Link

log = structlog.get_logger("realconnect.connector.bluesky")

#: a cursor write per frame passed over would be a Redis round trip per firehose frame
SAVE_SKIPPED_EVERY_S = 1.0


def subscribe_url(base: str, collections: list[str], dids: list[str], cursor: int | None) -> str:
    params: list[tuple[str, str | int]] = [("wantedCollections", c) for c in collections]
    params += [("wantedDids", d) for d in dids]
    if cursor is not None:
        params.append(("cursor", cursor))
    return f"{base}?{urlencode(params)}" if params else base


def delivery_id(frame: dict[str, object]) -> str:
    c = frame.get("commit") or {}
    assert isinstance(c, dict)
    return "bluesky:{}:{}:{}:{}".format(
        frame.get("did"), c.get("collection"), c.get("rkey"), c.get("rev") or frame.get("time_us")
    )


def read_frame(
    raw: str | bytes, wanted: set[str]
) -> tuple[dict[str, Any], int | None, bytes | None]:
    """A Jetstream frame, its ``time_us``, and its bytes when it is a commit of a wanted
    collection (what is forwarded, as received); None for what is passed over."""
    frame = orjson.loads(raw)
    t_us = frame.get("time_us")
    commit = frame.get("commit") or {}
    forward = (
        frame.get("kind") == "commit"
        and isinstance(commit, dict)
        and commit.get("collection") in wanted
    )
    body = (raw.encode() if isinstance(raw, str) else raw) if forward else None
    return frame, t_us if isinstance(t_us, int) else None, body


async def run(link: Link) -> None:
    cfg = link.settings.connect.bluesky
    c = link.settings.connect
    backoff = Backoff(c.backoff_s, c.backoff_max_s)
    wanted = set(cfg.collections)
    if not cfg.dids:
        log.warning(
            "no REALCONNECT_CONNECT__BLUESKY__DIDS: reading every account on the network; "
            "list the community's DIDs to filter at the source"
        )
    first = True
    while not link.stop.is_set():
        stored = await link.position("cursor")
        cursor = None if stored is None else max(0, int(stored) - int(cfg.rewind_s * 1e6))
        url = subscribe_url(cfg.url, cfg.collections, cfg.dids, cursor)
        if not first:
            link.reconnected()
        first = False
        link.state = "connecting"
        try:
            async with connect(
                url, user_agent_header=c.user_agent, max_size=2**21, open_timeout=c.timeout_s
            ) as ws:
                link.state = "live"
                log.info("jetstream connected", cursor=cursor, dids=len(cfg.dids))
                saved_at = 0.0
                async for raw in ws:
                    frame, t_us, body = read_frame(raw, wanted)
                    if body is not None:
                        at = t_us / 1e6 if t_us is not None else None
                        await link.forward(body, delivery_id(frame), at=at)
                        if t_us is not None:
                            await link.save(cursor=t_us)
                            saved_at = time.monotonic()
                    elif t_us is not None:
                        link.seen(t_us / 1e6)
                        if time.monotonic() - saved_at > SAVE_SKIPPED_EVERY_S:
                            await link.save(cursor=t_us)  # nothing before it is pending
                            saved_at = time.monotonic()
                    backoff.reset()
                    if link.stop.is_set():
                        return
            await link.sleep(backoff.next())  # closed cleanly by the server: reconnect
        except InvalidStatus as e:
            wait = retry_after(e.response.headers) or backoff.next()
            if e.response.status_code == 429:
                link.throttled()
            log.warning("jetstream refused", status=e.response.status_code, retry_in_s=wait)
            link.state = "backoff"
            await link.sleep(wait)
        except (OSError, WebSocketException, TimeoutError) as e:
            wait = backoff.next()
            log.warning("jetstream connection lost", error=repr(e), retry_in_s=wait)
            link.state = "backoff"
            await link.sleep(wait)
