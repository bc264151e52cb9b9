"""The Redis feed store against the real Redis server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.suggestions import SUGGESTION_ADAPTER, Suggestion
from services.common.redis import Keys
from services.common.settings import Settings
from services.notifier.feeds import items_for
from services.notifier.store import FeedStore

NOW = datetime(2026, 3, 1, tzinfo=UTC)
WEEKS = {"ann": "2026-W09", "ben": "2026-W09"}


def suggestion(n: int, pair: tuple[str, str] = ("ann", "ben")) -> Suggestion:
    return Suggestion(
        suggestion_id=f"{n:04x}",
        pair=pair,
        score=1.0,
        suggested_at=NOW + timedelta(hours=n),
        evidence={"n": n},
        explanation=f"number {n}",
    )


async def test_delivering_twice_writes_each_item_once(settings: Settings, redis) -> None:
    store = FeedStore(redis, Keys(settings), cap=100)
    assert await store.deliver(items_for(suggestion(1), NOW), WEEKS) == 2
    assert await store.deliver(items_for(suggestion(1), NOW), WEEKS) == 0
    for person, other in (("ann", "ben"), ("ben", "ann")):
        feed = await store.feed(person)
        assert [i["item_id"] for i in feed] == ["0001"]
        assert feed[0]["other_person_id"] == other
    assert await store.sent_this_week("ann", "2026-W09") == 1  # a redelivery is not counted
    stats = await redis.hgetall(Keys(settings).stats)
    assert stats == {b"feed_items": b"2", b"suggestions_delivered": b"1"}


async def test_feeds_are_newest_first_capped_and_paged(settings: Settings, redis) -> None:
    store = FeedStore(redis, Keys(settings), cap=4)
    for n in (2, 5, 1, 4, 3, 6):
        await store.deliver(items_for(suggestion(n), NOW + timedelta(minutes=n)), WEEKS)
    first, cursor = await store.page("ann", limit=2)
    assert [i.item_id for i in first] == ["0006", "0005"]
    second, cursor2 = await store.page("ann", limit=2, cursor=cursor)
    assert [i.item_id for i in second] == ["0004", "0003"]
    assert cursor2 is None  # the cap (4) trimmed the two oldest
    assert await redis.hlen(Keys(settings).feed_items("ann")) == 4


async def test_snoozed_items_are_hidden_until_their_time(settings: Settings, redis) -> None:
    store = FeedStore(redis, Keys(settings), cap=10)
    a, _ = items_for(suggestion(1), NOW)
    await store.deliver(items_for(suggestion(1), NOW), WEEKS)
    await store.put(a.model_copy(update={"snoozed_until": NOW + timedelta(days=3)}))
    assert (await store.page("ann", now=NOW + timedelta(days=1)))[0] == []
    assert len((await store.page("ann", now=NOW + timedelta(days=4)))[0]) == 1


async def test_namespaces_do_not_see_each_other(settings: Settings, redis) -> None:
    other = Settings(namespace=settings.namespace + "x")
    await FeedStore(redis, Keys(settings), cap=10).deliver(items_for(suggestion(1), NOW), WEEKS)
    assert await FeedStore(redis, Keys(other), cap=10).feed("ann") == []


async def test_tokens_are_stored_hashed(settings: Settings, redis) -> None:
    store = FeedStore(redis, Keys(settings), cap=10)
    token, digest = await store.issue_token("ann")
    assert await store.person_for(token) == "ann"
    assert await store.person_for(token + "x") is None
    keys = [k async for k in redis.scan_iter(match=f"{settings.namespace}:*")]
    assert all(token.encode() not in k for k in keys)
    assert any(digest.encode() in k for k in keys)


async def test_weekly_counts_keep_the_current_week_and_go_when_the_person_is_forgotten(
    settings: Settings, redis
) -> None:
    keys = Keys(settings)
    store = FeedStore(redis, keys, cap=100)
    await store.deliver(items_for(suggestion(1), NOW), WEEKS)
    await store.deliver(items_for(suggestion(2), NOW), {"ann": "2026-W10", "ben": "2026-W09"})
    assert await store.sent_this_week("ann", "2026-W10") == 1
    assert await store.sent_this_week("ann", "2026-W09") == 0  # a past week is dropped
    assert await store.sent_this_week("ben", "2026-W09") == 2
    assert 0 < await redis.ttl(keys.sent("ann")) <= 8 * 86400
    ann_held = SUGGESTION_ADAPTER.dump_json(suggestion(3))  # ann and ben, held in partition 2
    await store.hold(2, ann_held, 1e12)
    assert await store.held_of("ann", 4) == [(2, ann_held)]
    await store.forget("ann", 4)
    assert await store.held(2) == []
    assert not await redis.exists(keys.sent("ann"), keys.feed("ann"), keys.feed_items("ann"))
    # no key of this namespace is about ann any more (ben's keep their own names)
    namespace = keys.sent("ann").split("rc:")[0]
    left = [k async for k in redis.scan_iter(match=f"{namespace}*")]
    assert left and not [k for k in left if b":ann" in k]
