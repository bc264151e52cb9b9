"""Live pipeline figures, read from where they are true: Kafka offsets and Redis counters."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis

from services.common.kafka import Topics, committed_offsets, partition_ends
from services.common.redis import Keys
from services.common.settings import Settings


class PipelineStats:
    """Holds one consumer (for end offsets) and one admin client (for group offsets)."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self._settings = settings
        self._topics = Topics(settings)
        self._keys = Keys(settings)
        self._redis = redis
        bootstrap = settings.kafka.bootstrap_servers
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)

    async def start(self) -> None:
        await self._consumer.start()
        await self._admin.start()

    async def stop(self) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def _ends(self, topic: str) -> dict[int, int]:
        return await partition_ends(self._consumer, topic)

    async def _lag(self, topic: str, group: str) -> dict[str, Any]:
        ends, committed_raw = await asyncio.gather(
            self._ends(topic), committed_offsets(self._admin, group, attempts=3, backoff=0.2)
        )
        committed = {tp.partition: m.offset for tp, m in committed_raw.items() if tp.topic == topic}
        per_partition = {
            p: max(0, e - max(committed.get(p, 0), 0)) for p, e in sorted(ends.items())
        }
        return {
            "group": group,
            "topic": topic,
            "lag": sum(per_partition.values()),
            "partitions": per_partition,
        }

    async def snapshot(self) -> dict[str, Any]:
        t = self._topics
        interactions, suggestions, dlq_in, dlq_out = await asyncio.gather(
            self._ends(t.interactions),
            self._ends(t.suggestions),
            self._ends(t.interactions_dlq),
            self._ends(t.suggestions_dlq),
        )
        stats, pairs = await asyncio.gather(
            self._redis.hgetall(self._keys.stats), self._redis.hvals(self._keys.pairs_tracked)
        )
        matcher_lag, notifier_lag = await asyncio.gather(
            self._lag(t.interactions, t.app_id("matcher")),
            self._lag(t.suggestions, t.app_id("notifier")),
        )
        return {
            "interactions_in": sum(interactions.values()),
            "pairs_tracked": sum(int(v) for v in pairs),
            "suggestions_emitted": sum(suggestions.values()),
            "suggestions_delivered": int(stats.get(b"suggestions_delivered", 0)),
            "feed_items": int(stats.get(b"feed_items", 0)),
            "dead_letters": sum(dlq_in.values()) + sum(dlq_out.values()),
            "lag": [matcher_lag, notifier_lag],
        }
