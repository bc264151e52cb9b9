"""Rebuild every feed in Redis from Kafka, the source of truth (after Redis lost its data).

Reads the compacted topics from the beginning to their current ends: ``people.forgotten``
(the suppression list), ``people.consent`` (preferences), ``people.tokens`` (hashed bearer
tokens) and ``feeds`` (every item in its latest state; tombstones remove). Items of forgotten
people are not restored. Idempotent: running it twice gives the same Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
from aiokafka import AIOKafkaConsumer

from schemas.people import FEED_ITEM_ADAPTER, PREFERENCES_ADAPTER, person_hash
from services.common.kafka import Topics, end_offsets, topic_partitions
from services.common.redis import Keys, new_redis
from services.common.settings import Settings
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


async def rebuild(settings: Settings, progress: Progress | None = None) -> dict[str, int]:
    t = Topics(settings)
    keys = Keys(settings)
    redis = new_redis(settings)
    store = FeedStore(redis, keys, cap=settings.notifier.feed_cap)
    counts = {"forgotten": 0, "preferences": 0, "tokens": 0, "items": 0, "skipped": 0}
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
            await store.set_preferences(person, PREFERENCES_ADAPTER.validate_json(value))
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
        for value in (await read_compacted(settings, t.feeds)).values():
            if value is None:
                continue
            item = FEED_ITEM_ADAPTER.validate_json(value)
            if {person_hash(item.person_id), person_hash(item.other_person_id)} & forgotten:
                counts["skipped"] += 1
                continue
            await store.put(item)
            counts["items"] += 1
            if item.type == "suggestion":
                suggestions.add(item.suggestion_id)
            if progress:
                progress(1)
        await redis.hset(
            keys.stats,
            mapping={"feed_items": counts["items"], "suggestions_delivered": len(suggestions)},
        )
    finally:
        await redis.aclose()
    return counts
