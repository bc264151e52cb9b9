"""The matcher's list of forgotten people (``services.matcher.forgetting``) against the real
Redis: read before the first record, retried while Redis cannot answer, matched by hash."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from schemas.people import person_hash
from services.common.redis import Keys
from services.common.settings import Settings
from services.matcher.forgetting import RETRY_S, Forgotten, pair_involves
from tests.factories import interaction


async def test_the_list_is_read_once_and_matches_either_person_by_hash(
    settings: Settings, redis: Any
) -> None:
    key = Keys(settings).forgotten
    await redis.sadd(key, person_hash("mallory"))
    forgotten = Forgotten(redis, key)
    assert not forgotten.involves(interaction("mallory", "bob"))  # not read yet
    await forgotten.ensure_loaded(now=100.0)
    assert forgotten.loaded
    assert forgotten.involves(interaction("mallory", "bob"))
    assert forgotten.involves(interaction("bob", "mallory"))
    assert not forgotten.involves(interaction("alice", "bob"))
    await redis.sadd(key, person_hash("alice"))
    await forgotten.ensure_loaded(now=200.0)  # loaded already: not read again by records
    assert not forgotten.involves(interaction("alice", "bob"))
    await forgotten.read()  # the timer's read
    assert forgotten.involves(interaction("alice", "bob"))
    forgotten.add(person_hash("carol"))  # from people.forgotten
    assert forgotten.involves(interaction("carol", "dave"))
    # mallory opts in again: the feeds service takes her off the list, then the tombstone
    await redis.srem(key, person_hash("mallory"))
    forgotten.remove(person_hash("mallory"))
    assert not forgotten.involves(interaction("mallory", "bob"))
    await forgotten.read()  # and the next read does not bring her back
    assert not forgotten.involves(interaction("mallory", "bob"))
    assert forgotten.involves(interaction("alice", "bob"))


async def test_a_read_that_fails_is_retried_after_a_pause_and_then_succeeds(
    settings: Settings, redis: Any
) -> None:
    key = Keys(settings).forgotten
    await redis.sadd(key, person_hash("mallory"))
    nowhere = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)  # nothing listens
    forgotten = Forgotten(nowhere, key)
    await forgotten.ensure_loaded(now=100.0)
    assert not forgotten.loaded  # logged, not raised: the record goes on
    forgotten._redis = redis  # Redis is back
    await forgotten.ensure_loaded(now=100.0 + RETRY_S / 2)
    assert not forgotten.loaded  # too soon to ask again
    await forgotten.ensure_loaded(now=100.0 + RETRY_S + 1)
    assert forgotten.loaded and forgotten.involves(interaction("mallory", "bob"))
    await nowhere.aclose()


def test_pair_keys_are_matched_by_either_person_s_hash() -> None:
    assert pair_involves(b"alice|mallory", person_hash("mallory"))
    assert pair_involves(b"alice|mallory", person_hash("alice"))
    assert not pair_involves(b"alice|bob", person_hash("mallory"))
