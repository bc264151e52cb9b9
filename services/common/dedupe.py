"""Canonical event-id deduplication in Redis: a duplicate within the window (7 days by
default) is acknowledged but not produced again.

Markers are written only *after* Kafka acknowledged the events: a crash in between can then
produce an event twice (absorbed downstream by the matcher), never lose one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from services.common.redis import Keys


class EventDedupe:
    def __init__(self, redis: Redis, keys: Keys, *, window_s: int) -> None:
        self._redis, self._keys, self._window = redis, keys, window_s

    async def unseen(self, events: Sequence[tuple[str, str]]) -> list[bool]:
        """For each (source, event_id): True if it was not produced within the window."""
        if not events:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for source, eid in events:
                pipe.exists(self._keys.event_seen(source, eid))
            found = await pipe.execute()
        return [not f for f in found]

    async def mark(self, events: Sequence[tuple[str, str]]) -> None:
        if not events:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            self.mark_in(pipe, events)
            await pipe.execute()

    def mark_in(self, pipe: Any, events: Sequence[tuple[str, str]]) -> None:
        """Queue the markers on ``pipe`` (sent with the caller's other commands)."""
        for source, eid in events:
            pipe.set(self._keys.event_seen(source, eid), b"1", ex=self._window)
