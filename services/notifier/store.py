"""The feed store in Redis: derived, rebuildable views (Kafka's ``feeds`` topic is the truth).

Per person a ZSET ``feed`` (item id by delivery order) and a HASH ``feed:items`` (item id ->
item JSON). A delivery is one Lua script: it writes an item only if it is not there yet, so
reprocessing ``meetup.suggestions`` after a crash never duplicates an item, and it counts the
weekly cap in the same step (so a redelivery is not counted twice either).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, Final, TypeVar, cast

import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from schemas.people import (
    FEED_ITEM_ADAPTER,
    PREFERENCES_ADAPTER,
    FeedItem,
    Preferences,
    person_hash,
)
from services.common.redis import Keys
from services.matcher import sentences

# KEYS: stats, then per item (feed zset, items hash, about-set of the other, sent counts
#       (a hash: week -> count), events channel). ARGV: cap, week ttl, then per item (item id,
#       order, json, about member, week). The counts keep only the current week.
_DELIVER: Final = """
local cap = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local n = (#KEYS - 1) / 5
local new = 0
for i = 0, n - 1 do
  local z, h, about, sent, chan = KEYS[2+i*5], KEYS[3+i*5], KEYS[4+i*5], KEYS[5+i*5], KEYS[6+i*5]
  local id, order, json, member = ARGV[3+i*5], ARGV[4+i*5], ARGV[5+i*5], ARGV[6+i*5]
  local week = ARGV[7+i*5]
  if redis.call('HSETNX', h, id, json) == 1 then
    redis.call('ZADD', z, order, id)
    redis.call('SADD', about, member)
    redis.call('HINCRBY', sent, week, 1)
    redis.call('EXPIRE', sent, ttl)
    if redis.call('HLEN', sent) > 1 then
      for _, w in ipairs(redis.call('HKEYS', sent)) do
        if w ~= week then redis.call('HDEL', sent, w) end
      end
    end
    redis.call('PUBLISH', chan, json)
    redis.call('HINCRBY', KEYS[1], 'feed_items', 1)
    new = new + 1
    local count = redis.call('ZCARD', z)
    if count > cap then
      local old = redis.call('ZRANGE', z, 0, count - cap - 1)
      redis.call('ZREMRANGEBYRANK', z, 0, count - cap - 1)
      redis.call('HDEL', h, unpack(old))
    end
  end
end
if new > 0 then redis.call('HINCRBY', KEYS[1], 'suggestions_delivered', 1) end
return new
"""


log = structlog.get_logger(__name__)
T = TypeVar("T")
MAX_RETRY_DELAY_S: Final = 5.0


async def until_stored(what: str, op: Callable[[], Awaitable[T]]) -> T:
    """Run a Redis write, retrying with backoff while Redis is unreachable.

    The partition waits instead of skipping: its offset is not committed past a suggestion
    that is not stored, so nothing is lost, and every write is idempotent, so a retry of a
    write that did land changes nothing. (An exception escaping a faust agent would stop the
    agent for good while the worker kept running.)
    """
    delay = 0.1
    while True:
        try:
            return await op()
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("feed_write_retry", what=what, error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY_S)


#: a person's sent-this-week counters outlive their week by a day
WEEK_COUNTS_TTL_S: Final = 8 * 86400
#: how long the notifier's decision about a pair's latest suggestion is kept (issue 39)
DELIVERY_RECORD_TTL_S: Final = 90 * 86400


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _held_pair(raw: bytes) -> tuple[str, ...]:
    """The people of a held suggestion (its pair or a group's members, parsed: an id that
    merely appears in the explanation's text is not one of them)."""
    try:
        v = orjson.loads(raw)
        pair = v.get("pair") or v.get("members") or ()
    except (orjson.JSONDecodeError, AttributeError):
        return ()
    return tuple(p for p in pair if isinstance(p, str))


def _hash(value: str) -> str:

    return hashlib.sha256(value.encode()).hexdigest()


def without_member(item: FeedItem, person: str) -> FeedItem | None:
    """A group item after ``person`` is forgotten: without them, their ties and their name in
    its sentence; None if it is not a group item or fewer than three members are left."""
    if not item.is_group:
        return None
    rest = tuple(m for m in item.members if m != person)
    if len(rest) < 3:
        return None
    ties = {
        key: v
        for key, v in (item.evidence.get("ties") or {}).items()
        if person not in key.split("|")
    }
    explanation = sentences.item(item.type, None, None, len(rest))
    return item.model_copy(
        update={
            "members": rest,
            "evidence": {**item.evidence, "ties": ties},
            "explanation": explanation,
            "meetup": {**(item.meetup or {}), "size": len(rest)},
        }
    )


class FeedStore:
    def __init__(self, redis: Redis, keys: Keys, *, cap: int) -> None:
        self._redis = redis
        self._keys = keys
        self._cap = cap
        self._deliver = redis.register_script(_DELIVER)

    # --- items ----------------------------------------------------------------------------

    async def deliver(self, items: tuple[FeedItem, ...], weeks: dict[str, str]) -> int:
        """Write items not yet in their feeds; returns how many were new."""
        keys: list[str] = [self._keys.stats]
        args: list[Any] = [self._cap, WEEK_COUNTS_TTL_S]
        for item in items:
            k = self._keys
            keys += [
                k.feed(item.person_id),
                k.feed_items(item.person_id),
                k.about(item.other_person_id),
                k.sent(item.person_id),
                k.feed_events(item.person_id),
            ]
            args += [
                item.item_id,
                int(item.delivered_at.timestamp() * 1000),
                item.model_dump_json(),
                f"{item.person_id}|{item.item_id}",
                weeks[item.person_id],
            ]
        return int(await self._deliver(keys=keys, args=args))

    async def deliver_group(self, items: tuple[FeedItem, ...], weeks: dict[str, str]) -> int:
        """`deliver` for a group's items; each member's item is also listed under every other
        member (``about``), so that forgetting one member reaches the others' items."""
        await self._about_members(items)
        return await self.deliver(items, weeks)

    async def _about_members(self, items: tuple[FeedItem, ...]) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            for item in items:
                for other in item.others:
                    pipe.sadd(self._keys.about(other), f"{item.person_id}|{item.item_id}")
            await pipe.execute()

    async def put(self, item: FeedItem) -> None:
        """Write an item's latest state (a response, a read flag, a rebuild)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.feed_items(item.person_id), item.item_id, item.model_dump_json())
            pipe.zadd(
                self._keys.feed(item.person_id),
                {item.item_id: int(item.delivered_at.timestamp() * 1000)},
            )
            for other in item.others:
                pipe.sadd(self._keys.about(other), f"{item.person_id}|{item.item_id}")
            await pipe.execute()

    async def remove(self, person_id: str, item_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._keys.feed_items(person_id), item_id)
            pipe.zrem(self._keys.feed(person_id), item_id)
            await pipe.execute()

    async def item(self, person_id: str, item_id: str) -> FeedItem | None:
        raw = await self._redis.hget(self._keys.feed_items(person_id), item_id)
        return None if raw is None else FEED_ITEM_ADAPTER.validate_json(raw)

    async def page(
        self,
        person_id: str,
        *,
        limit: int = 50,
        cursor: str | None = None,
        now: datetime | None = None,
    ) -> tuple[list[FeedItem], str | None]:
        """Newest first; snoozed items are hidden until their time; an opaque cursor."""
        hi: Any = "+inf"
        if cursor:
            hi = f"({int(base64.urlsafe_b64decode(cursor.encode()).decode())}"
        out: list[FeedItem] = []
        next_cursor: str | None = None
        while len(out) < limit:
            rows = cast(
                list[tuple[bytes, float]],
                await self._redis.zrevrangebyscore(
                    self._keys.feed(person_id), hi, "-inf", start=0, num=limit, withscores=True
                ),
            )
            if not rows:
                break
            raw = await self._redis.hmget(self._keys.feed_items(person_id), [r[0] for r in rows])
            for (_, score), r in zip(rows, raw, strict=True):
                hi = f"({int(score)}"
                if r is None:
                    continue
                item = FEED_ITEM_ADAPTER.validate_json(r)
                if now and item.snoozed_until and item.snoozed_until > now:
                    continue
                out.append(item)
                if len(out) == limit:
                    next_cursor = base64.urlsafe_b64encode(str(int(score)).encode()).decode()
                    break
            if len(rows) < limit:
                break
        if next_cursor and not await self._redis.zrevrangebyscore(
            self._keys.feed(person_id),
            f"({base64.urlsafe_b64decode(next_cursor).decode()}",
            "-inf",
            start=0,
            num=1,
        ):
            next_cursor = None
        return out, next_cursor

    async def feed(self, person_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
        items, _ = await self.page(person_id, limit=limit)
        return [i.model_dump(mode="json") for i in items]

    async def sent_this_week(self, person_id: str, week: str) -> int:
        return int(await self._redis.hget(self._keys.sent(person_id), week) or 0)

    # --- preferences ----------------------------------------------------------------------

    async def names(self, people: Iterable[str]) -> dict[str, str]:
        """The display names of those of ``people`` who have one: their profile's, else, for
        someone known only by a platform handle, the name that platform shows."""
        wanted = list(dict.fromkeys(people))
        if not wanted:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self._keys.names, wanted)
            pipe.hmget(self._keys.platform_names, wanted)
            own, platform = await pipe.execute()
        return {
            p: v.decode() if isinstance(v, bytes) else str(v)
            for p, a, b in zip(wanted, own, platform, strict=True)
            if (v := a if a is not None else b) is not None
        }

    async def preferences(self, person_id: str) -> Preferences | None:
        raw = await self._redis.hget(self._keys.prefs, person_id)
        return None if raw is None else PREFERENCES_ADAPTER.validate_json(raw)

    async def set_preferences(self, person_id: str, prefs: Preferences) -> None:
        await self._redis.hset(self._keys.prefs, person_id, prefs.model_dump_json())

    # --- held deliveries ------------------------------------------------------------------

    # One sorted set per ``meetup.suggestions`` partition, so that only the notifier that
    # owns a partition releases its held deliveries (two would post their webhooks twice).

    async def hold(self, partition: int, suggestion_json: bytes, until: float) -> None:
        await self._redis.zadd(self._keys.held_in(partition), {suggestion_json: until})

    async def held(self, partition: int) -> list[tuple[bytes, float]]:
        """The partition's held deliveries with their release times (epoch s)."""
        return cast(
            list[tuple[bytes, float]],
            await self._redis.zrange(self._keys.held_in(partition), 0, -1, withscores=True),
        )

    async def release(self, partition: int, suggestion_json: bytes) -> None:
        await self._redis.zrem(self._keys.held_in(partition), suggestion_json)

    async def held_before_partitions(self) -> list[bytes]:
        """Held deliveries of a version before holds were kept per partition."""
        return cast(list[bytes], await self._redis.zrange(self._keys.held, 0, -1))

    async def drop_held_before_partitions(self, suggestion_json: bytes) -> None:
        await self._redis.zrem(self._keys.held, suggestion_json)

    async def held_of(self, person_id: str, partitions: int) -> list[tuple[int, bytes]]:
        """Every held delivery that names the person, with its partition."""
        found = []
        for p in range(partitions):
            for raw, _ in await self.held(p):
                if person_id in _held_pair(raw):
                    found.append((p, raw))
        return found

    async def restore_weekly_counts(self, counts: dict[str, tuple[str, int]]) -> None:
        """The sent-this-week counters (person -> (week, count)), as deliveries keep them."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for person, (week, count) in counts.items():
                pipe.delete(self._keys.sent(person))
                pipe.hset(self._keys.sent(person), week, count)
                pipe.expire(self._keys.sent(person), WEEK_COUNTS_TTL_S)
            await pipe.execute()

    # --- tokens ---------------------------------------------------------------------------

    async def issue_token(self, person_id: str, expires_at: float | None = None) -> tuple[str, str]:
        """A new bearer token (returned once) and its hash (the only thing stored); it stops
        working at ``expires_at`` (epoch seconds; None: when revoked)."""
        token = secrets.token_urlsafe(32)
        digest = _hash(token)
        await self.store_token(digest, person_id, expires_at)
        return token, digest

    async def store_token(
        self, digest: str, person_id: str, expires_at: float | None = None
    ) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            if expires_at is None:
                pipe.set(self._keys.token(digest), person_id)
            else:  # Redis drops it at that second
                pipe.set(self._keys.token(digest), person_id, exat=max(1, int(expires_at)))
            pipe.sadd(self._keys.tokens_of(person_id), digest)
            await pipe.execute()

    async def revoke_token(self, token: str) -> tuple[str, str] | None:
        """Forget one token; returns (person, digest), or None if it was not valid."""
        digest = _hash(token)
        raw = await self._redis.get(self._keys.token(digest))
        if raw is None:
            return None
        person = _text(raw)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.token(digest))
            pipe.srem(self._keys.tokens_of(person), digest)
            await pipe.execute()
        return person, digest

    async def person_for(self, token: str) -> str | None:
        raw = await self._redis.get(self._keys.token(_hash(token)))
        return None if raw is None else _text(raw)

    # --- sign-in links and web sessions ---------------------------------------------------

    async def mint_signin(self, person_id: str, ttl_s: int) -> str:
        """A one-time sign-in link token (returned once; only its hash is stored)."""
        token = secrets.token_urlsafe(32)
        await self._redis.set(self._keys.signin(_hash(token)), person_id, ex=ttl_s)
        return token

    async def peek_signin(self, token: str) -> str | None:
        """Whose link this is, without using it up (the confirmation page)."""
        raw = await self._redis.get(self._keys.signin(_hash(token)))
        return None if raw is None else _text(raw)

    async def use_signin(self, token: str) -> str | None:
        """Use a sign-in link up (atomically: two clicks cannot both sign in)."""
        raw = await self._redis.getdel(self._keys.signin(_hash(token)))
        return None if raw is None else _text(raw)

    async def open_session(self, person_id: str, ttl_s: int) -> tuple[str, str]:
        """A new web session: (cookie value, CSRF token)."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        digest = _hash(sid)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(
                self._keys.session(digest),
                orjson.dumps({"person": person_id, "csrf": csrf}),
                ex=ttl_s,
            )
            pipe.sadd(self._keys.sessions_of(person_id), digest)
            pipe.expire(self._keys.sessions_of(person_id), ttl_s)
            await pipe.execute()
        return sid, csrf

    async def session(self, sid: str) -> tuple[str, str] | None:
        """(person, CSRF token) of a live session."""
        raw = await self._redis.get(self._keys.session(_hash(sid)))
        if raw is None:
            return None
        data = orjson.loads(raw)
        return str(data["person"]), str(data["csrf"])

    async def close_session(self, sid: str) -> None:
        digest = _hash(sid)
        raw = await self._redis.getdel(self._keys.session(digest))
        if raw is not None:
            await self._redis.srem(self._keys.sessions_of(orjson.loads(raw)["person"]), digest)

    # --- email ----------------------------------------------------------------------------

    async def mail_was_sent(self, message_id: str) -> bool:
        return bool(await self._redis.exists(self._keys.mail_sent(message_id)))

    async def mark_mail_sent(self, message_id: str, ttl_s: int = 60 * 86400) -> None:
        await self._redis.set(self._keys.mail_sent(message_id), 1, ex=ttl_s)

    # --- chat ---------------------------------------------------------------------------

    async def linked(self, person_id: str, platform: str) -> str | None:
        """The person's linked account on ``platform`` that is still theirs (the first, by
        name, when an admin linked more than one), or None."""
        for handle in (h for h in await self.handles(person_id) if h.startswith(f"{platform}:")):
            owner = await self._redis.hget(self._keys.linked, handle)
            if owner is None or _text(owner) == person_id:  # older links have no owner
                return handle
        return None

    async def handles(self, person_id: str) -> list[str]:
        """The source-qualified handles linked to a person, by name."""
        return sorted(
            _text(h) for h in await self._redis.smembers(self._keys.identities_of(person_id))
        )

    async def pending_link(self, person_id: str) -> str | None:
        """The account a link code was sent to and is waiting for (None: none)."""
        raw = await self._redis.hget(self._keys.link_code(person_id), "handle")
        return _text(raw) if raw is not None else None

    async def owner(self, handle: str) -> str | None:
        """The person who linked ``handle`` (a chat button's presser), or None."""
        raw = await self._redis.hget(self._keys.linked, handle)
        return _text(raw) if raw is not None else None

    async def link(self, person_id: str, handle: str) -> None:
        k = self._keys
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd(k.identities_of(person_id), handle)
            pipe.hset(k.linked, handle, person_id)
            await pipe.execute()

    async def unlink(self, person_id: str, handle: str) -> bool:
        """Remove the link; False if it was not the person's."""
        k = self._keys
        if not await self._redis.sismember(k.identities_of(person_id), handle):
            return False
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.srem(k.identities_of(person_id), handle)
            pipe.hdel(k.linked, handle)
            await pipe.execute()
        return True

    async def chat_message(
        self, platform: str, person_id: str, item_id: str
    ) -> dict[str, str] | None:
        """Where the chat message of the person's item is (None: not sent)."""
        raw = await self._redis.get(self._keys.chat_sent(platform, person_id, item_id))
        return orjson.loads(raw) if raw is not None else None

    async def mark_chat_sent(
        self,
        platform: str,
        person_id: str,
        item_id: str,
        ref: dict[str, str],
        ttl_s: int = 60 * 86400,
    ) -> None:
        await self._redis.set(
            self._keys.chat_sent(platform, person_id, item_id), orjson.dumps(ref), ex=ttl_s
        )

    # --- forgetting -----------------------------------------------------------------------

    async def record_delivery(
        self,
        key: str,
        people: tuple[str, ...],
        record: dict[str, Any],
        ttl_s: int = DELIVERY_RECORD_TTL_S,
    ) -> None:
        """Keep the notifier's decision about a suggestion (issue 39): ``key`` is the pair's
        key (its latest suggestion) or ``group:<group id>``; ``people``, whom it concerns."""
        k = self._keys
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(k.delivery_decision(key), orjson.dumps(record), ex=ttl_s)
            for person in people:
                pipe.sadd(k.delivery_decisions_of(person), key)
                pipe.expire(k.delivery_decisions_of(person), ttl_s)
            await pipe.execute()

    async def delivery_decision(self, key: str) -> dict[str, Any] | None:
        """The notifier's decision kept under ``key`` (`record_delivery`)."""
        raw = await self._redis.get(self._keys.delivery_decision(key))
        return None if raw is None else cast(dict[str, Any], orjson.loads(raw))

    async def is_forgotten(self, *person_ids: str) -> bool:
        hashes = [person_hash(p) for p in person_ids]
        flags = await self._redis.smismember(self._keys.forgotten, hashes)
        return any(flags)

    async def unforget(self, person_id: str) -> None:
        """A forgotten person opted in again: their id is no longer suppressed."""
        await self._redis.srem(self._keys.forgotten, person_hash(person_id))

    async def forget(
        self, person_id: str, partitions: int
    ) -> tuple[list[tuple[str, str]], list[FeedItem]]:
        """Remove everything about a person from Redis. Returns the (owner, item id) of every
        feed item that was removed, for tombstones on the ``feeds`` topic, and the group items
        of others that now leave the person out, for new records there. A group left with
        fewer than three members is withdrawn: its items are removed."""
        k = self._keys
        own = [_text(i) for i in await self._redis.hkeys(k.feed_items(person_id))]
        about: list[list[str]] = []
        regrouped: list[FeedItem] = []
        for m in await self._redis.smembers(k.about(person_id)):
            owner, item_id = _text(m).split("|", 1)
            item = await self.item(owner, item_id)
            smaller = None if item is None else without_member(item, person_id)
            if smaller is not None:
                regrouped.append(smaller)
            else:
                about.append([owner, item_id])
        digests = [_text(d) for d in await self._redis.smembers(k.tokens_of(person_id))]
        held = await self.held_of(person_id, partitions)
        old_held = [h for h in await self.held_before_partitions() if person_id in _held_pair(h)]
        sessions = [_text(d) for d in await self._redis.smembers(k.sessions_of(person_id))]
        decided = await self._redis.smembers(k.delivery_decisions_of(person_id))
        deliveries = [_text(d) for d in decided]

        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd(k.forgotten, person_hash(person_id))
            pipe.delete(
                k.feed(person_id),
                k.feed_items(person_id),
                k.about(person_id),
                k.tokens_of(person_id),
                k.sent(person_id),
                k.sessions_of(person_id),
                k.delivery_decisions_of(person_id),
                *(k.delivery_decision(d) for d in deliveries),
                *(k.token(d) for d in digests),
                *(k.session(d) for d in sessions),
                *(k.chat_sent(p, person_id, i) for i in own for p in ("slack", "discord")),
                k.link_code(person_id),
                k.link_codes_sent(person_id),
            )
            pipe.hdel(k.prefs, person_id)
            for d in deliveries:  # the other's list of decisions names the pair too
                if d.startswith(f"{person_id}|"):
                    pipe.srem(k.delivery_decisions_of(d[len(person_id) + 1 :]), d)
                elif d.endswith(f"|{person_id}"):
                    pipe.srem(k.delivery_decisions_of(d[: -len(person_id) - 1]), d)
            for owner, item_id in about:
                pipe.hdel(k.feed_items(owner), item_id)
                pipe.zrem(k.feed(owner), item_id)
            for item in regrouped:
                pipe.hset(k.feed_items(item.person_id), item.item_id, item.model_dump_json())
            for partition, raw in held:
                pipe.zrem(k.held_in(partition), raw)
            if old_held:
                pipe.zrem(k.held, *old_held)

            await pipe.execute()
        return [(person_id, i) for i in own] + [(o, i) for o, i in about], regrouped
