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

    def delivery(self, source: str, delivery_id: str) -> str:
        """A webhook delivery seen within the replay window."""
        return self._k("delivery", source, delivery_id)

    def rate_limit(self, source: str) -> str:
        return self._k("ratelimit", source)

    def event_seen(self, source: str, event_id: str) -> str:
        """A canonical event id produced within the dedupe window."""
        return self._k("event", source, event_id)

    def directory(self, source: str) -> str:
        """HASH platform reference (``account:host:id``, ``thing:t1_x``...) -> handle."""
        return self._k("directory", source)

    def labels(self, outcome: str) -> str:
        """HASH explanation signal -> how many suggestions with it got ``outcome``."""
        return self._k("labels", outcome)

    @property
    def stats(self) -> str:
        """HASH of counters: suggestions_delivered, feed_items."""
        return self._k("stats")

    @property
    def pairs_tracked(self) -> str:
        """HASH partition -> pairs tracked in that matcher partition."""
        return self._k("stats", "pairs_tracked")
