"""The directory of platform references seen before (Redis): ``account:host:id``,
``thing:t1_x``, ``msg:...`` -> source-qualified handle. Derived state: it is relearned from
the raw topics when replayed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, cast

from redis.asyncio import Redis

from services.common.redis import Keys

#: The directory is a cache of the platforms' own data: entries expire after 30 days unused.
TTL_S: Final = 30 * 86400


class Directory:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis, self._keys = redis, keys

    async def resolve(self, source: str, refs: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(refs))
        if not wanted:
            return {}
        values = await self._redis.hmget(self._keys.directory(source), wanted)
        return {
            r: v.decode() if isinstance(v, bytes) else str(v)
            for r, v in zip(wanted, values, strict=True)
            if v is not None
        }

    async def learn(self, source: str, entries: Mapping[str, str]) -> None:
        if entries:
            key = self._keys.directory(source)
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hset(key, mapping=cast(Any, dict(entries)))  # redis-py's stubs: invariant keys
                pipe.expire(key, TTL_S)
                await pipe.execute()
