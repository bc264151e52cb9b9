"""The notifier rides out a Redis restart: nothing lost, nothing duplicated, no dead agent."""

from __future__ import annotations

import asyncio
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from schemas.people import Preferences
from schemas.suggestions import SUGGESTION_ADAPTER, Suggestion
from services.common.kafka import Topics, ensure_topics, new_producer
from services.common.redis import Keys, new_redis
from services.common.settings import Settings
from services.notifier.store import FeedStore
from tests.conftest import settings_for
from tests.stack import PrivateRedis, ServiceStack


def suggestion(n: int) -> Suggestion:
    return Suggestion(
        suggestion_id=f"s{n:03d}",
        pair=("ann", "ben"),
        score=1.0,
        suggested_at=datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=n),
        evidence={},
        explanation=f"#{n}",
    )


async def send(settings: Settings, items: list[Suggestion]) -> None:
    producer = new_producer(settings, client_id="test")
    await producer.start()
    try:
        for s in items:
            await producer.send_and_wait(
                Topics(settings).suggestions, key=b"ann|ben", value=SUGGESTION_ADAPTER.dump_json(s)
            )
    finally:
        await producer.stop()


async def feed_ids(settings: Settings, person: str) -> list[str]:
    redis = new_redis(settings)
    try:
        items = await FeedStore(redis, Keys(settings), cap=100).feed(person, limit=100)
        return [i["item_id"] for i in items]
    finally:
        await redis.aclose()


async def wait_for_feed(settings: Settings, n: int, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    ids: list[str] = []
    while time.monotonic() < deadline:
        try:
            ids = await feed_ids(settings, "ann")
        except RedisConnectionError:  # not up yet
            ids = []
        if len(ids) >= n:
            return ids
        await asyncio.sleep(0.3)
    return ids


async def test_notifier_waits_out_a_redis_restart(
    servers: None, namespace: str, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (make test installs it)")
    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    try:
        settings = settings_for(namespace, redis={"url": f"redis://127.0.0.1:{redis.port}/0"})
        await ensure_topics(settings)
        r = new_redis(settings)
        try:
            for _ in range(100):  # until the private Redis answers
                try:
                    await r.ping()
                    break
                except RedisConnectionError:
                    await asyncio.sleep(0.1)

            for person in ("ann", "ben"):  # both consent (double opt-in), no weekly cap in reach
                await FeedStore(r, Keys(settings), cap=100).set_preferences(
                    person, Preferences(opted_in=True, max_per_week=100)
                )
        finally:
            await r.aclose()
        stack = ServiceStack(settings, tmp_path / "svc", ("notifier",))

        stack_factory.append(stack)
        await asyncio.to_thread(stack.start)

        await send(settings, [suggestion(n) for n in range(5)])
        assert len(await wait_for_feed(settings, 5)) == 5

        redis.stop()
        # While Redis is down: new suggestions, and a redelivery of one already written.
        await send(settings, [suggestion(n) for n in range(5, 10)] + [suggestion(2)])
        await asyncio.sleep(3)
        assert stack.procs["notifier"].poll() is None
        redis.start()

        ids = await wait_for_feed(settings, 10)
        await asyncio.sleep(2)  # let any stray duplicate land before counting
        ids = await feed_ids(settings, "ann")
        assert ids == [f"s{n:03d}" for n in reversed(range(10))]
        assert await feed_ids(settings, "ben") == ids
        r = new_redis(settings)
        try:
            stats = await r.hgetall(Keys(settings).stats)
        finally:
            await r.aclose()
        assert stats[b"suggestions_delivered"] == b"10"
        assert "feed_write_retry" in stack.log("notifier").read_text()
    finally:
        redis.stop()
