"""Canonical event-id deduplication in Redis: a duplicate within the window (7 days by
default) is acknowledged but not produced again.

Markers are written only *after* Kafka acknowledged the events: a crash in between can then
produce an event twice (absorbed downstream by the matcher), never lose one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from services.common.coalesce import Coalescer
from services.common.redis import Keys

#: ids per Redis command (bounded argument lists)
CHUNK = 1000
_MARK = "for _, k in ipairs(KEYS) do redis.call('SET', k, '1', 'EX', ARGV[1]) end return #KEYS"


class EventDedupe:
    def __init__(self, redis: Redis, keys: Keys, *, window_s: int) -> None:
        self._redis, self._keys, self._window = redis, keys, window_s
        # concurrent requests share their MGETs (services.common.coalesce)
        self._lookup: Coalescer[str, bool] = Coalescer(self._unseen_keys)

    async def unseen(self, events: Sequence[tuple[str, str]]) -> list[bool]:
        """For each (source, event_id): True if it was not produced within the window."""
        return await self._lookup([self._keys.event_seen(source, eid) for source, eid in events])

    async def _unseen_keys(self, keys: list[str]) -> list[bool]:
        found: list[Any] = []
        for start in range(0, len(keys), CHUNK):  # one MGET per chunk, not one EXISTS per id
            found += await self._redis.mget(keys[start : start + CHUNK])
        return [f is None for f in found]

    async def mark(self, events: Sequence[tuple[str, str]]) -> None:
        if not events:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            self.mark_in(pipe, events)
            await pipe.execute()

    def mark_in(self, pipe: Any, events: Sequence[tuple[str, str]]) -> None:
        """Queue the markers on ``pipe`` (sent with the caller's other commands)."""
        keys = [self._keys.event_seen(source, eid) for source, eid in events]
        for start in range(0, len(keys), CHUNK):  # one script call per chunk of markers
            chunk = keys[start : start + CHUNK]
            pipe.eval(_MARK, len(chunk), *chunk, self._window)
