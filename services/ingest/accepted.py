"""What ingest writes to Redis once Kafka has acknowledged events, shared by the requests in
flight together (``services.common.coalesce``): the dedupe markers, the console's
per-second rate counts and its "interactions in" counter, in one pipeline."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from redis.asyncio import Redis

from services.common.coalesce import Coalescer
from services.common.dedupe import EventDedupe
from services.common.redis import Keys


def count_rate_in(pipe: Any, keys: Keys, per_source: Mapping[str, int]) -> None:
    """Per-second, per-source counts for the console's rate chart (kept 15 minutes)."""
    if not per_source:
        return
    key = keys.rate(int(time.time()))
    for source, n in per_source.items():
        pipe.hincrby(key, source, n)
    pipe.expire(key, 900)


class AcceptedLog:
    def __init__(self, redis: Redis, keys: Keys, dedupe: EventDedupe) -> None:
        self._redis, self._keys, self._dedupe = redis, keys, dedupe
        self._write: Coalescer[tuple[str, str], None] = Coalescer(self._write_many)

    async def record(self, ids: Sequence[tuple[str, str]]) -> None:
        """Mark these (source, event_id) as produced and count them; returns once Redis has
        it (raises RedisError if it could not)."""
        await self._write(ids)

    async def _write_many(self, ids: list[tuple[str, str]]) -> list[None]:
        async with self._redis.pipeline(transaction=False) as pipe:
            self._dedupe.mark_in(pipe, ids)
            count_rate_in(pipe, self._keys, Counter(source for source, _ in ids))
            pipe.hincrby(self._keys.stats, "interactions_in", len(ids))
            await pipe.execute()
        return [None] * len(ids)
