"""Rebuild every feed in Redis from Kafka, the source of truth (after Redis lost its data).

Reads the compacted topics from the beginning to their current ends: ``people.forgotten``
(the suppression list), ``people.consent`` (preferences), ``people.tokens`` (hashed bearer
tokens), ``feeds`` (every item in its latest state; tombstones remove) and
``notifications.held`` (deliveries held for later); the weekly counters of the cap are
counted again from the restored items. Nothing of forgotten people is restored. Idempotent:
running it twice gives the same Redis.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer

from schemas.people import FEED_ITEM_ADAPTER, PREFERENCES_ADAPTER, FeedItem, person_hash
from schemas.suggestions import GroupSuggestion
from services.common.kafka import Topics, end_offsets, topic_partitions
from services.common.redis import Keys, new_redis
from services.common.settings import Settings
from services.notifier.feeds import parse_held, week_of
from services.notifier.store import FeedStore

Progress = Callable[[int], None]


def token_record(value: bytes) -> tuple[str, float | None]:
    """A ``people.tokens`` value: ``{"person_id", "expires_at"}``, or (written before tokens
    could expire) the bare person id."""
    try:
        d = orjson.loads(value)
    except orjson.JSONDecodeError:
        d = None
    if isinstance(d, dict) and isinstance(d.get("person_id"), str):
        expires = d.get("expires_at")
        return d["person_id"], float(expires) if isinstance(expires, int | float) else None
    return value.decode(), None


async def read_compacted(settings: Settings, topic: str) -> dict[bytes, bytes | None]:
    """The latest value of every key of ``topic`` (None for a tombstone)."""
    bootstrap = settings.kafka.bootstrap_servers
    ends = await end_offsets(bootstrap, topic)
    latest: dict[bytes, bytes | None] = {}
    if not any(ends.values()):
        return latest
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        remaining = {tp for tp in tps if ends.get(tp.partition, 0) > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for records in batch.values():
                for r in records:
                    if r.key is not None:
                        latest[r.key] = r.value
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp.partition]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return latest


async def restore_held(settings: Settings, store: FeedStore, forgotten: set[str]) -> int:
    """Held deliveries from ``notifications.held``, each into its partition's set."""
    restored = 0
    for value in (await read_compacted(settings, Topics(settings).held)).values():
        if value is None:
            continue
        held = orjson.loads(value)
        raw = orjson.dumps(held["suggestion"])
        s = parse_held(raw)
        people = s.members if isinstance(s, GroupSuggestion) else s.pair
        if {person_hash(p) for p in people} & forgotten:
            continue
        await store.hold(int(held["partition"]), raw, float(held["until"]))
        restored += 1
    return restored


def weekly_counts(
    items: list[FeedItem], time_zones: dict[str, str], now: datetime
) -> dict[str, tuple[str, int]]:
    """Each person's deliveries in their current week (in their time zone, else UTC), as
    the notifier counts them for the weekly cap."""
    counts: Counter[str] = Counter()
    weeks: dict[str, str] = {}
    for item in items:
        if item.type not in ("suggestion", "group"):  # an item that says "on" is not counted
            continue
        person = item.person_id
        tz = time_zones.get(person, "UTC")
        week = weeks.setdefault(person, week_of(now, tz))
        if week_of(item.delivered_at, tz) == week:
            counts[person] += 1
    return {person: (weeks[person], n) for person, n in counts.items()}


async def restore_weekly_counts(
    store: FeedStore, items: list[FeedItem], time_zones: dict[str, str]
) -> int:
    counts = weekly_counts(items, time_zones, datetime.now(UTC))
    await store.restore_weekly_counts(counts)
    return len(counts)


async def rebuild(settings: Settings, progress: Progress | None = None) -> dict[str, int]:
    t = Topics(settings)
    keys = Keys(settings)
    redis = new_redis(settings)
    store = FeedStore(redis, keys, cap=settings.notifier.feed_cap)
    counts = {"forgotten": 0, "preferences": 0, "tokens": 0, "items": 0, "skipped": 0}
    time_zones: dict[str, str] = {}
    try:
        forgotten = {
            k.decode()
            for k, v in (await read_compacted(settings, t.forgotten)).items()
            if v is not None
        }
        if forgotten:
            await redis.sadd(keys.forgotten, *forgotten)
        counts["forgotten"] = len(forgotten)
        for key, value in (await read_compacted(settings, t.consent)).items():
            person = key.decode()
            if value is None or person_hash(person) in forgotten:
                continue
            prefs = PREFERENCES_ADAPTER.validate_json(value)
            await store.set_preferences(person, prefs)
            time_zones[person] = prefs.time_zone
            counts["preferences"] += 1
        now = time.time()
        for key, value in (await read_compacted(settings, t.tokens)).items():
            if value is None:
                continue
            person, expires_at = token_record(value)
            if person_hash(person) in forgotten or (expires_at is not None and expires_at <= now):
                continue
            await store.store_token(key.decode(), person, expires_at)
            counts["tokens"] += 1
        suggestions: set[str] = set()
        delivered: list[FeedItem] = []
        for value in (await read_compacted(settings, t.feeds)).values():
            if value is None:
                continue
            item = FEED_ITEM_ADAPTER.validate_json(value)
            if {person_hash(item.person_id), person_hash(item.other_person_id)} & forgotten:
                counts["skipped"] += 1
                continue
            await store.put(item)
            delivered.append(item)
            counts["items"] += 1
            if item.type == "suggestion":
                suggestions.add(item.suggestion_id)
            if progress:
                progress(1)
        await redis.hset(
            keys.stats,
            mapping={"feed_items": counts["items"], "suggestions_delivered": len(suggestions)},
        )
        counts["held"] = await restore_held(settings, store, forgotten)
        counts["weekly_counts"] = await restore_weekly_counts(store, delivered, time_zones)
    finally:
        await redis.aclose()
    return counts
