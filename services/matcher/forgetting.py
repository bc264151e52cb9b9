"""The people who asked to be forgotten, as the matcher knows them.

The durable list is Redis's (written by the feeds service before ``people.forgotten``). Every
worker reads it before the first record after a start and every few seconds after, so that it
knows every name whichever partition its records came from, and a restart forgets nobody's
wish. Names are person hashes (``schemas.people.person_hash``) of people and their handles.
"""

from __future__ import annotations

from typing import Any, Final

import structlog
from redis.exceptions import RedisError

from schemas.events import Interaction
from schemas.people import person_hash

log = structlog.get_logger(__name__)

#: how long after a failed read (Redis down) a record asks again
RETRY_S: Final = 5.0


class Forgotten:
    def __init__(self, redis: Any, key: str) -> None:
        self._redis = redis
        self._key = key
        self.hashes: set[str] = set()
        self.loaded = False
        self._tried = -1e9

    async def read(self) -> None:
        """Add the durable list to this worker's set (a failed read is logged and retried)."""
        try:
            hashes = await self._redis.smembers(self._key)
        except RedisError as exc:
            log.warning("forgotten_not_loaded", error=str(exc))
            return
        # a union: the topic may name someone before Redis does. A person who opted in again
        # leaves the set by the tombstone on people.forgotten (remove), and Redis no longer
        # lists them, so a later read does not bring them back
        self.hashes.update(h.decode() if isinstance(h, bytes) else h for h in hashes)
        self.loaded = True

    async def ensure_loaded(self, now: float) -> None:
        """Before a record: read the list if it was never read (at most every RETRY_S)."""
        if not self.loaded and now - self._tried > RETRY_S:
            self._tried = now
            await self.read()

    def add(self, hashed: str) -> None:
        self.hashes.add(hashed)

    def remove(self, hashed: str) -> None:
        """They opted in again (a tombstone on ``people.forgotten``)."""
        self.hashes.discard(hashed)

    def involves(self, interaction: Interaction) -> bool:
        """Whether either person of the interaction asked to be forgotten."""
        return bool(self.hashes) and bool(
            {person_hash(interaction.actor), person_hash(interaction.target)} & self.hashes
        )


def pair_involves(key: bytes, hashed: str) -> bool:
    """Whether the pair key ``a|b`` involves the person with this hash."""
    a, _, b = key.decode().partition("|")
    return hashed in (person_hash(a), person_hash(b))
