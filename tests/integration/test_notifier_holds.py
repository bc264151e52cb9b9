"""Held deliveries are durable and have one owner (issue 21).

- "Hold, never drop" survives losing Redis: a delivery held by a pause is on
  ``notifications.held`` before Redis, so `rebuild-feeds` restores it (and the weekly cap's
  counters, counted again from the delivered items); once the pause ends it is delivered.
- Two notifiers release held deliveries without sending anything twice: each releases only
  the partitions it owns (before, every notifier re-decided every held delivery, and both
  posted its webhooks).
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from services.common.kafka import ensure_topics
from services.common.redis import Keys
from services.common.settings import Settings
from services.notifier.feeds import week_of
from services.notifier.rebuild import rebuild
from services.notifier.store import FeedStore
from tests.integration.test_notifier_feeds import my_feed, poll, send, suggestion
from tests.integration.test_webhooks import Receiver
from tests.people import opt_in
from tests.stack import PrivateRedis, ServiceStack

PAUSED = {"paused_until": (date.today() + timedelta(days=30)).isoformat()}


async def held_count(settings: Settings, redis: Redis) -> int:
    keys = Keys(settings)
    return sum([await redis.zcard(keys.held_in(p)) for p in range(settings.kafka.partitions)])


async def test_a_held_delivery_and_the_weekly_counts_survive_losing_redis(
    tmp_path: Path, settings: Settings
) -> None:
    own_redis = PrivateRedis(tmp_path / "redis")
    own_redis.start()
    own = settings.model_copy(
        update={
            "redis": settings.redis.model_copy(
                update={"url": f"redis://127.0.0.1:{own_redis.port}/0"}
            )
        }
    )
    await ensure_topics(own)
    stack = ServiceStack(
        own,
        tmp_path / "stack",
        ("feeds", "notifier"),
        REALCONNECT_NOTIFIER__RELEASE_INTERVAL_S="0.5",
    )
    redis = Redis.from_url(own.redis.url)
    try:
        await asyncio.to_thread(stack.start)
        feeds = stack.url("feeds")
        ann = opt_in(feeds, "d:ann", **PAUSED)
        ben = opt_in(feeds, "d:ben")
        cat = opt_in(feeds, "d:cat")
        opt_in(feeds, "d:dan")
        await send(own, suggestion("d:ann", "d:ben"), suggestion("d:cat", "d:dan"))
        assert len(poll(lambda: my_feed(stack, cat))) == 1  # delivered, and counted
        assert await held_count(own, redis) == 1  # ann is paused: held

        stack.kill("notifier", signal.SIGTERM)
        await redis.flushall()  # Redis lost everything
        counts = await rebuild(own)
        assert counts["held"] == 1
        assert await held_count(own, redis) == 1
        store = FeedStore(redis, Keys(own), cap=100)
        week = week_of(datetime.now(UTC), "UTC")
        assert await store.sent_this_week("d:cat", week) == 1  # the cap counts it again
        assert await store.sent_this_week("d:ann", week) == 0

        await asyncio.to_thread(stack.start_one, "notifier")
        await asyncio.to_thread(stack.wait_ready, "notifier")
        # the pause ends (ann's token came back with the rebuild): the delivery goes out
        httpx.put(
            f"{feeds}/v1/me/preferences", json={"opted_in": True, "max_per_week": 50}, headers=ann
        ).raise_for_status()
        assert len(poll(lambda: my_feed(stack, ann))) == 1
        assert len(my_feed(stack, ben)) == 1
        assert poll(lambda: held_now(own) == 0)
    finally:
        stack.stop()
        await redis.aclose()
        own_redis.stop()


def held_now(settings: Settings) -> int:
    """`held_count` from a synchronous test step (`poll`)."""
    keys = Keys(settings)
    client = SyncRedis.from_url(settings.redis.url)
    try:
        return sum(client.zcard(keys.held_in(p)) for p in range(settings.kafka.partitions))
    finally:
        client.close()


async def test_two_notifiers_release_each_held_delivery_once(
    tmp_path: Path, settings: Settings
) -> None:
    receiver = Receiver(failures=0)
    await ensure_topics(settings)
    env = {
        "REALCONNECT_NOTIFIER__RELEASE_INTERVAL_S": "0.3",
        "REALCONNECT_NOTIFIER__WEBHOOK_ALLOW_PRIVATE": "true",
    }
    stacks = [
        ServiceStack(settings, tmp_path / "a", ("feeds", "notifier"), **env),
        ServiceStack(settings, tmp_path / "b", ("notifier",), **env),
    ]
    redis = Redis.from_url(settings.redis.url)
    try:
        for s in stacks:
            await asyncio.to_thread(s.start)
        feeds = stacks[0].url("feeds")
        people = []
        for i in range(8):
            a = f"o{i}:ann"
            people.append((a, opt_in(feeds, a, webhook_url=receiver.url, **PAUSED)))
            opt_in(feeds, f"o{i}:ben")
        await send(settings, *(suggestion(f"o{i}:ann", f"o{i}:ben") for i in range(8)))
        assert poll(lambda: held_now(settings) == 8)
        await asyncio.sleep(3)  # both notifiers own partitions (one joined after the other)
        for _, auth in people:
            httpx.put(
                f"{feeds}/v1/me/preferences",
                json={"opted_in": True, "max_per_week": 50, "webhook_url": receiver.url},
                headers=auth,
            ).raise_for_status()
        assert poll(lambda: len(receiver.requests) >= 8)
        await asyncio.sleep(3)  # several release rounds of both notifiers later
        deliveries = Counter(h["x-realconnect-delivery"] for h, _ in receiver.requests)
        assert len(deliveries) == 8
        assert set(deliveries.values()) == {1}, deliveries  # none posted twice
    finally:
        for s in stacks:
            s.stop()
        receiver.server.shutdown()
        await redis.aclose()
