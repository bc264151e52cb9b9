"""Redis client and the key layout (every key carries the namespace)."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from services.common.settings import Settings


def new_redis(settings: Settings) -> aioredis.Redis:
    return aioredis.Redis.from_url(settings.redis.url, decode_responses=False)


@dataclass(frozen=True)
class Keys:
    """Every Redis key the services use, in one place."""

    settings: Settings

    def _k(self, *parts: str) -> str:
        return self.settings.prefixed(":".join(("rc", *parts)), sep=":")

    def feed(self, person_id: str) -> str:
        """ZSET item_id -> suggested_at (epoch ms): the feed's order."""
        return self._k("feed", person_id)

    def feed_items(self, person_id: str) -> str:
        """HASH item_id -> item JSON."""
        return self._k("feed", person_id, "items")

    def suggestion_seen(self, suggestion_id: str) -> str:
        """Marker that a suggestion was delivered (idempotence, and the suggestions count)."""
        return self._k("suggestion", suggestion_id)

    @property
    def stats(self) -> str:
        """HASH of counters: suggestions_delivered, feed_items."""
        return self._k("stats")

    @property
    def pairs_tracked(self) -> str:
        """HASH partition -> pairs tracked in that matcher partition."""
        return self._k("stats", "pairs_tracked")
