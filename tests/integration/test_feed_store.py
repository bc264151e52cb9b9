"""The Redis feed store against the real Redis server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.suggestions import Suggestion
from services.common.redis import Keys
from services.common.settings import Settings
from services.notifier.feeds import items_for
from services.notifier.store import FeedStore


def suggestion(n: int, pair: tuple[str, str] = ("ann", "ben")) -> Suggestion:
    return Suggestion(
        suggestion_id=f"s{n}",
        pair=pair,
        score=1.0,
        suggested_at=datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=n),
        evidence={"n": n},
        explanation=f"number {n}",
    )


async def test_delivering_twice_writes_each_item_once(settings: Settings, redis) -> None:
    store = FeedStore(redis, Keys(settings), cap=100)
    assert await store.deliver(items_for(suggestion(1))) is True
    assert await store.deliver(items_for(suggestion(1))) is False
    for person, other in (("ann", "ben"), ("ben", "ann")):
        feed = await store.feed(person)
        assert [i["item_id"] for i in feed] == ["s1"]
        assert feed[0]["other_person_id"] == other
    stats = await redis.hgetall(Keys(settings).stats)
    assert stats == {b"feed_items": b"2", b"suggestions_delivered": b"1"}


async def test_feeds_are_newest_first_and_capped(settings: Settings, redis) -> None:
    store = FeedStore(redis, Keys(settings), cap=3)
    for n in (2, 5, 1, 4, 3):
        await store.deliver(items_for(suggestion(n)))
    feed = await store.feed("ann")
    assert [i["item_id"] for i in feed] == ["s5", "s4", "s3"]
    assert await redis.hlen(Keys(settings).feed_items("ann")) == 3  # trimmed items are gone too


async def test_namespaces_do_not_see_each_other(settings: Settings, redis) -> None:
    other = Settings(namespace=settings.namespace + "x")
    await FeedStore(redis, Keys(settings), cap=10).deliver(items_for(suggestion(1)))
    assert await FeedStore(redis, Keys(other), cap=10).feed("ann") == []
