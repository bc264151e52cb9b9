"""Exactly once through a crash, and feeds rebuilt from Kafka after Redis lost everything."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from schemas.people import Preferences
from schemas.suggestions import SUGGESTION_ADAPTER, Suggestion
from services.common.kafka import Topics, ensure_topics, new_producer
from services.common.redis import Keys, new_redis
from services.common.settings import Settings
from services.notifier.feeds import week_of
from services.notifier.store import FeedStore
from services.pipeline import wait_caught_up
from tests.conftest import settings_for
from tests.people import ADMIN, admin_feed, opt_in
from tests.stack import BIN, PrivateRedis, ServiceStack
from tests.webhooks import read_topic

NOW = datetime.now(UTC)


def suggestion(i: int, a: str, b: str) -> Suggestion:
    return Suggestion(
        suggestion_id=f"{i:032x}",
        pair=(a, b),
        score=2.0,
        suggested_at=NOW - timedelta(seconds=i),
        evidence={"sources": ["phone"]},
        explanation=f"pair {i}",
    )


async def produce(settings: Settings, items: list[Suggestion]) -> None:
    producer = new_producer(settings, client_id="test")
    await producer.start()
    try:
        futures = [
            await producer.send(
                Topics(settings).suggestions,
                key="|".join(s.pair).encode(),
                value=SUGGESTION_ADAPTER.dump_json(s),
            )
            for s in items
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def test_killing_the_notifier_mid_batch_leaves_each_item_exactly_once(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    n = 150
    pairs = [(f"k:a{i:03d}", f"k:b{i:03d}") for i in range(n)]
    await ensure_topics(settings)
    redis = new_redis(settings)
    keys = Keys(settings)
    store = FeedStore(redis, keys, cap=100)
    for a, b in pairs:
        for p in (a, b):
            await store.set_preferences(p, Preferences(opted_in=True, max_per_week=100))
    stack = ServiceStack(settings, tmp_path, ("notifier",))
    stack_factory.append(stack)
    await asyncio.to_thread(stack.start)
    try:
        await produce(settings, [suggestion(i, a, b) for i, (a, b) in enumerate(pairs)])
        written = 0
        for _ in range(3000):  # SIGKILL as soon as the notifier is part-way through
            written = int(await redis.hget(keys.stats, "feed_items") or 0)
            if written >= 40:
                break
            await asyncio.sleep(0.01)
        stack.kill("notifier", signal.SIGKILL)
        assert 0 < written < 2 * n, f"the kill did not land mid-batch ({written} items)"
        await asyncio.to_thread(stack.start_one, "notifier")
        await asyncio.to_thread(stack.wait_ready, "notifier")
        t = Topics(settings)
        await wait_caught_up(
            settings, t.suggestions, t.app_id("notifier"), time.monotonic() + 120, 0.3
        )
        for a, b in pairs:
            for p in (a, b):
                items = await store.feed(p)
                assert len(items) == 1, (p, items)
        stats = await redis.hgetall(keys.stats)
        assert stats[b"feed_items"] == str(2 * n).encode()
        assert stats[b"suggestions_delivered"] == str(n).encode()
        week = week_of(NOW, "UTC")
        for a, _ in pairs[:20]:  # a redelivery is not counted against the weekly cap
            assert await store.sent_this_week(a, week) == 1
        records = await read_topic(settings, t.feeds, expected=2 * n, settle=1)
        assert len({r.key for r in records}) == 2 * n  # redelivered records share their keys
    finally:
        await redis.aclose()


def snapshot(feeds: str, people: dict[str, dict[str, str]]) -> dict[str, Any]:
    out = {}
    for person, auth in people.items():
        out[person] = {
            "feed": admin_feed(feeds, person),
            "mine": httpx.get(f"{feeds}/v1/me/feed", headers=auth).json(),
            "prefs": httpx.get(f"{feeds}/v1/me/preferences", headers=auth).json(),
        }
    return out


async def test_feeds_are_rebuilt_from_kafka_after_flushall(
    namespace: str, servers: None, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    redis_server = PrivateRedis(tmp_path / "redis")
    redis_server.start()
    try:
        settings = settings_for(
            namespace, redis={"url": f"redis://127.0.0.1:{redis_server.port}/0"}
        )
        await ensure_topics(settings)
        stack = ServiceStack(settings, tmp_path / "svc", ("feeds", "notifier"))
        stack_factory.append(stack)
        await asyncio.to_thread(stack.start)
        feeds = stack.url("feeds")
        people = {
            p: opt_in(feeds, p, time_zone="Europe/Lisbon", max_per_week=20)
            for p in ("r:ann", "r:ben", "r:cat", "r:dan")
        }
        await produce(
            settings,
            [
                suggestion(1, "r:ann", "r:ben"),
                suggestion(2, "r:ann", "r:cat"),
                suggestion(3, "r:cat", "r:dan"),
            ],
        )
        t = Topics(settings)
        await wait_caught_up(
            settings, t.suggestions, t.app_id("notifier"), time.monotonic() + 60, 0.2
        )
        item = f"{1:032x}"
        for p in ("r:ann", "r:ben"):
            httpx.post(f"{feeds}/v1/me/feed/{item}/accept", headers=people[p]).raise_for_status()
        httpx.post(
            f"{feeds}/v1/me/feed/{3:032x}/decline", headers=people["r:cat"]
        ).raise_for_status()
        httpx.post(f"{feeds}/v1/me/feed/{2:032x}/read", headers=people["r:cat"]).raise_for_status()
        before = snapshot(feeds, people)
        assert len(before["r:ann"]["feed"]) == 3  # two suggestions and the mutual meetup

        redis = new_redis(settings)
        try:
            await redis.flushall()
            assert await redis.dbsize() == 0
        finally:
            await redis.aclose()
        assert httpx.get(f"{feeds}/v1/me/feed", headers=people["r:ann"]).status_code == 401
        assert admin_feed(feeds, "r:ann") == []

        result = await asyncio.to_thread(
            subprocess.run,
            [str(BIN), "rebuild-feeds"],
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "items=" in result.stdout
        after = snapshot(feeds, people)
        assert after == before
        assert httpx.get(f"{feeds}/v1/people/r:ann/feed", headers=ADMIN).status_code == 200
    finally:
        redis_server.stop()
