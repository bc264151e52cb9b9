"""Redis-backed request guards of the webhook endpoint: replay claims and rate limits."""

from __future__ import annotations

from typing import Final

from redis.asyncio import Redis

from services.common.redis import Keys

# Token bucket, one hash per source; the clock is Redis's own, so every ingest replica agrees.
# KEYS[1] bucket; ARGV rate/s, burst. Returns 0 if allowed, else ms until a token is there.
_BUCKET: Final = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
"""


class Guards:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis, self._keys = redis, keys
        self._bucket = redis.register_script(_BUCKET)

    async def claim_delivery(self, source: str, delivery_id: str, ttl_s: int) -> bool:
        """True the first time this delivery is seen within ``ttl_s``."""
        return bool(
            await self._redis.set(self._keys.delivery(source, delivery_id), b"1", nx=True, ex=ttl_s)
        )

    async def release_delivery(self, source: str, delivery_id: str) -> None:
        """Forget a claim whose delivery was not stored, so that its retry is accepted."""
        await self._redis.delete(self._keys.delivery(source, delivery_id))

    async def take_token(self, source: str, rate_per_s: float, burst: int) -> float:
        """0 if the request may go ahead, else the seconds until it may."""
        wait_ms = await self._bucket(keys=[self._keys.rate_limit(source)], args=[rate_per_s, burst])
        return int(wait_ms) / 1000
