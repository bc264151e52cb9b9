"""The feed store in Redis. Every write is one Lua script: atomic and idempotent.

Layout (see ``services.common.redis.Keys``): per person a ZSET ``feed`` (item id by
suggested_at in ms, newest last) and a HASH ``feed:items`` (item id -> JSON). A marker
key per suggestion makes a second delivery of the same suggestion a no-op, so reprocessing
``meetup.suggestions`` after a crash never duplicates an item.
"""

from __future__ import annotations

from typing import Any, Final, cast

import orjson
from redis.asyncio import Redis

from services.common.redis import Keys
from services.notifier.feeds import FeedItem

# KEYS: marker, stats, then (feed zset, items hash) per person.
# ARGV: item id, order score (ms), cap, then one item JSON per person.
_DELIVER: Final = """
if not redis.call('SET', KEYS[1], '1', 'NX') then return 0 end
local cap = tonumber(ARGV[3])
local people = (#KEYS - 2) / 2
for i = 1, people do
  local zkey = KEYS[1 + 2 * i]
  local hkey = KEYS[2 + 2 * i]
  redis.call('HSET', hkey, ARGV[1], ARGV[3 + i])
  redis.call('ZADD', zkey, ARGV[2], ARGV[1])
  local n = redis.call('ZCARD', zkey)
  if n > cap then
    local old = redis.call('ZRANGE', zkey, 0, n - cap - 1)
    redis.call('ZREMRANGEBYRANK', zkey, 0, n - cap - 1)
    redis.call('HDEL', hkey, unpack(old))
  end
  redis.call('HINCRBY', KEYS[2], 'feed_items', 1)
end
redis.call('HINCRBY', KEYS[2], 'suggestions_delivered', 1)
return 1
"""


class FeedStore:
    def __init__(self, redis: Redis, keys: Keys, *, cap: int) -> None:
        self._redis = redis
        self._keys = keys
        self._cap = cap
        self._deliver = redis.register_script(_DELIVER)

    async def deliver(self, items: tuple[FeedItem, ...]) -> bool:
        """Write the items of one suggestion into their feeds; False if already delivered."""
        first = items[0]
        keys: list[str] = [self._keys.suggestion_seen(first.suggestion_id), self._keys.stats]
        for item in items:
            keys += [self._keys.feed(item.person_id), self._keys.feed_items(item.person_id)]
        order = int(first.suggested_at.timestamp() * 1000)
        args: list[Any] = [first.item_id, order, self._cap]
        args += [item.model_dump_json().encode() for item in items]
        return bool(await self._deliver(keys=keys, args=args))

    async def feed(self, person_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """The person's feed, newest first."""
        # redis-py's stubs type every ZSET reply as a union; without scores it is a list of ids
        ids = cast(
            list[bytes], await self._redis.zrevrange(self._keys.feed(person_id), 0, limit - 1)
        )
        if not ids:
            return []
        raw = await self._redis.hmget(self._keys.feed_items(person_id), ids)
        return [orjson.loads(r) for r in raw if r is not None]
