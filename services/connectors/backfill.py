"""``realconnect backfill SOURCE --since DATE``: history read through the connectors' own
clients and forwarded to ingest, oldest first, so that a new community does not start from
zero. Platforms list history newest first; what is read is spooled to a temporary file (not
memory) and forwarded in reverse. What was already forwarded is a duplicate ingest drops.

- Mastodon: each configured stream's timeline (notifications, local, list, hashtag) and the
  account's own statuses, paged back with ``max_id``.
- Reddit: each subreddit's posts and comments, paged back with ``after`` (Reddit's
  listings end near 1,000 items: older history is not reachable through the API).
- Discord: each configured channel's messages, paged forward with ``after`` from the
  snowflake of the date.
- Bluesky: Jetstream played back from the date's cursor until it reaches the start time
  (only as far back as the instance keeps events: hours to a few days).

Positions of the live connector are not touched: start it first, then backfill.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import orjson
from websockets.asyncio.client import connect

from services.connectors import bluesky, mastodon
from services.connectors.core import Fatal, Link, epoch_of
from services.connectors.discord import Gateway
from services.connectors.reddit import LISTINGS, Reddit

DISCORD_EPOCH_MS = 1_420_070_400_000


class Progress(Protocol):
    def reading(self, at: float | None) -> None: ...

    def forwarding(self, total: int) -> None: ...

    def forwarded(self) -> None: ...


@dataclass
class Spool:
    """Payloads in the order read, on disk; given back in reverse (oldest first)."""

    file: Any = field(default_factory=lambda: tempfile.TemporaryFile(prefix="rc-backfill-"))  # noqa: SIM115 - closed by close()
    index: list[tuple[int, int, str, float | None]] = field(default_factory=list)
    size: int = 0

    def add(self, body: bytes, delivery: str, at: float | None) -> None:
        self.file.write(body)
        self.index.append((self.size, len(body), delivery, at))
        self.size += len(body)

    def __len__(self) -> int:
        return len(self.index)

    def oldest_first(self) -> Iterator[tuple[bytes, str, float | None]]:
        self.file.flush()
        for offset, length, delivery, at in reversed(self.index):
            self.file.seek(offset)
            yield self.file.read(length), delivery, at

    def close(self) -> None:
        self.file.close()


async def _drain(link: Link, spool: Spool, progress: Progress, origin: str | None = None) -> int:
    progress.forwarding(len(spool))
    for body, delivery, at in spool.oldest_first():
        await link.forward(body, delivery, at=at, origin=origin)
        progress.forwarded()
    return len(spool)


async def _mastodon(link: Link, since: float, progress: Progress) -> int:
    cfg = link.settings.connect.mastodon
    async with httpx.AsyncClient(timeout=link.settings.connect.timeout_s) as client:
        m = mastodon.Mastodon(link, client)
        reads: list[tuple[str, dict[str, str], str]] = [
            (s.rest_path, s.rest_params, s.kind) for s in map(mastodon.stream, cfg.streams)
        ]
        me = await m.get_object("/api/v1/accounts/verify_credentials")
        reads.append((f"/api/v1/accounts/{me['id']}/statuses", {}, "status"))
        spool = Spool()
        try:
            for path, params, kind in reads:
                max_id: str | None = None
                while True:
                    page = await m.page(
                        path,
                        {
                            **params,
                            "limit": mastodon.PAGE,
                            **({"max_id": max_id} if max_id else {}),
                        },
                    )
                    older = False
                    for item in page:
                        at = epoch_of(item.get("created_at"))
                        if at is not None and at < since:
                            older = True
                            break
                        spool.add(orjson.dumps(item), f"mastodon:{m.host}:{kind}:{item['id']}", at)
                        progress.reading(at)
                    if older or len(page) < mastodon.PAGE:
                        break
                    max_id = str(page[-1]["id"])
            return await _drain(link, spool, progress, m.host)
        finally:
            spool.close()


async def _reddit(link: Link, since: float, progress: Progress) -> int:
    cfg = link.settings.connect.reddit
    sent = 0
    async with httpx.AsyncClient(timeout=link.settings.connect.timeout_s) as client:
        r = Reddit(link, client)
        batches: list[tuple[str, str, list[dict[str, Any]]]] = []
        for sub in cfg.subreddits:
            for what in LISTINGS:  # posts before comments
                things = await r.newer(f"/r/{sub}/{what}", None, since=since)
                for t in things:
                    progress.reading(float(t["data"].get("created_utc") or 0) or None)
                batches.append((sub, what, things))
        progress.forwarding(sum(len(t) for _, _, t in batches))
        for sub, what, things in batches:
            await r.send(sub, what, things, save=False)
            for _ in things:
                progress.forwarded()
            sent += len(things)
    return sent


async def _discord(link: Link, since: float, progress: Progress) -> int:
    cfg = link.settings.connect.discord
    if not cfg.channels:
        raise Fatal("set REALCONNECT_CONNECT__DISCORD__CHANNELS: the channels to read history from")
    sent = 0
    async with httpx.AsyncClient(timeout=link.settings.connect.timeout_s) as client:
        gw = Gateway(link, client)
        progress.forwarding(0)
        for channel in cfg.channels:
            after = str(max(0, int(since * 1000) - DISCORD_EPOCH_MS) << 22)
            while True:
                page = await gw.messages(channel, after)
                for msg in page:
                    await gw.send_message(msg, save=False)
                    progress.reading(epoch_of(msg.get("timestamp")))
                    progress.forwarded()
                    sent += 1
                    after = str(msg["id"])
                if len(page) < 100:
                    break
    return sent


async def _bluesky(link: Link, since: float, progress: Progress) -> int:
    cfg = link.settings.connect.bluesky
    until_us = int(time.time() * 1e6)
    url = bluesky.subscribe_url(cfg.url, cfg.collections, cfg.dids, int(since * 1e6))
    wanted = set(cfg.collections)
    sent = 0
    progress.forwarding(0)
    async with connect(
        url, user_agent_header=link.settings.connect.user_agent, max_size=2**21
    ) as ws:
        async for raw in ws:
            frame, t_us, body = bluesky.read_frame(raw, wanted)
            if t_us is not None and t_us >= until_us:
                break
            at = t_us / 1e6 if t_us is not None else None
            if body is not None:
                await link.forward(body, bluesky.delivery_id(frame), at=at)
                progress.forwarded()
                sent += 1
            progress.reading(at)
    return sent


BACKFILL: dict[str, Callable[[Link, float, Progress], Coroutine[Any, Any, int]]] = {
    "mastodon": _mastodon,
    "reddit": _reddit,
    "discord": _discord,
    "bluesky": _bluesky,
}


def since_epoch(value: str) -> float:
    """``2026-01-31`` or an ISO 8601 time (UTC unless it names an offset)."""
    try:
        dt = datetime.fromisoformat(value)
    except ValueError as e:
        raise ValueError(f"--since {value!r}: give a date (2026-01-31) or ISO time") from e
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
