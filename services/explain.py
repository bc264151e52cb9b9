"""``realconnect explain A B``: why a pair was suggested, or why not (issue 39).

The pair's state is read where every matcher restores it from: the ``pairs`` table's
changelog, its partition read ``read_committed`` up to its end (the matcher need not be
running); the two people's circles likewise from the ``circles`` changelog, for the
person-relative decision. ``decisions.decide`` then walks the gates as of the pair's latest
exchange, with the settings' policy and the shipped model (a model refitted from answers lives
in the running matcher, and the record names the model it used). A suggested pair also shows
the record its suggestion carried (``Suggestion.decision``), the decision made then.

``explain_many`` reads each changelog once for many pairs (every pair the matcher keeps, for
the replay test that asks about all of them); ``circle_of`` is the console's pair inspector: a
person's circle and the decision about each partner in it. These read whole changelog
partitions: an operator's question, bounded by ``timeout``, not a hot path.

Bad input is a clear error: a pair of oneself, a forgotten person, a pair never in contact.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError
from redis.exceptions import RedisError

from schemas.events import pair_key
from schemas.people import person_hash
from schemas.suggestions import SUGGESTION_ADAPTER, Suggestion
from services.common.kafka import Topics, topic_partitions
from services.common.records import partition_for
from services.common.redis import Keys, new_redis
from services.common.settings import Settings
from services.matcher import circles, decisions
from services.matcher import pairs as logic
from services.matcher.forgetting import Forgotten
from services.matcher.handlers import policy_from
from services.matcher.store import is_pair


class ExplainError(ValueError):
    """A question the command cannot answer: the message says why."""


@dataclass(frozen=True)
class Explained:
    #: the decision as of the pair's latest exchange, recomputed now
    now: decisions.Decision
    state: logic.PairState
    #: the pair's latest suggestion, with the decision it carried (None: never suggested)
    suggestion: Suggestion | None = None
    #: the notifier's decision about that suggestion: delivered, held or dropped, and each
    #: delivery gate (consent, never-with, sources, pause, quiet hours, weekly cap); None when
    #: none is kept (no notifier yet, or the record expired)
    delivery: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """``suggested`` and ``gates`` are the matcher's: for a suggested pair, the decision
        its suggestion carried; otherwise the one recomputed now, with the gate that decided.
        ``now`` is always the recomputed one (a suggested pair's cooldown, say)."""
        s = self.state
        now = self.now.to_dict()
        record = self.suggestion.decision if self.suggestion is not None else None
        if self.suggestion is not None and record is not None:
            out: dict[str, Any] = {
                "pair": list(self.now.pair),
                "suggested": True,
                "decided_by": None,
                "at": self.suggestion.suggested_at.isoformat(),
                "gates": [g.model_dump() for g in record.gates],
                "model": record.model,
                "probability": record.probability,
                "contributions": [
                    {"feature": f, "share": v}
                    for f, v in sorted(record.contributions.items(), key=lambda kv: -kv[1])
                ],
                "would_change": None,
                "suggestion_id": self.suggestion.suggestion_id,
                "explanation": self.suggestion.explanation,
            }
        else:
            out = {**now, "suggestion_id": s.suggestion_id}
        out["now"] = now
        out["delivery"] = self.delivery
        out["outcome"] = s.outcome
        out["exchanges"] = {f"{s.a}->{s.b}": s.n_ab, f"{s.b}->{s.a}": s.n_ba}
        out["last_exchange_at"] = logic.iso(s.last_at)
        return out


async def _records(
    settings: Settings, topic: str, keys: set[bytes] | None, timeout: float
) -> AsyncIterator[tuple[bytes, bytes | None]]:
    """Each record of ``topic`` keyed by one of ``keys`` (their partitions read from the
    start to their end, ``read_committed``), in order, as ``(key, value)``; ``keys`` None:
    every record of every partition."""
    n = settings.kafka.partitions
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            raise ExplainError(f"no matcher state in this namespace ({topic} does not exist)")
        if keys is None:
            tps = sorted(await topic_partitions(consumer, topic))
        else:
            tps = sorted({TopicPartition(topic, partition_for(k, n)) for k in keys})
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout
        left = {tp for tp in tps if ends[tp] > 0}
        while left:
            if time.monotonic() > deadline:
                raise ExplainError(f"reading {topic} took longer than {timeout:.0f} s")
            batch = await consumer.getmany(*left, timeout_ms=500, max_records=50_000)
            for records in batch.values():
                for r in records:
                    if r.key is not None and (keys is None or r.key in keys):
                        yield r.key, r.value
            for tp in list(left):
                if await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
    finally:
        await consumer.stop()


async def latest(
    settings: Settings, table: str, keys: set[bytes] | None, *, timeout: float = 120.0
) -> dict[bytes, bytes]:
    """The latest value of each of ``keys`` (None: of every key) on a matcher table's
    changelog (a tombstone removes it)."""
    topic = f"{Topics(settings).app_id('matcher')}-{table}-changelog"
    out: dict[bytes, bytes] = {}
    async for key, value in _records(settings, topic, keys, timeout):
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


async def _forgotten(settings: Settings) -> set[str]:
    """The hashes of the people forgotten (the matcher's own list, in Redis)."""
    redis = new_redis(settings)
    forgotten = Forgotten(redis, Keys(settings).forgotten)
    try:
        await forgotten.read()
    finally:
        await redis.aclose()
    if not forgotten.loaded:  # read() logs and carries on: here an answer must wait
        raise RedisError("the list of forgotten people could not be read")
    return set(forgotten.hashes)


async def _delivery_decisions(settings: Settings, keys: list[bytes]) -> dict[bytes, dict[str, Any]]:
    """The notifier's decision about each pair's latest suggestion (Redis), by pair key."""
    k = Keys(settings)
    redis = new_redis(settings)
    try:
        raws = await redis.mget([k.delivery_decision(key.decode()) for key in keys])
    finally:
        await redis.aclose()
    return {key: orjson.loads(raw) for key, raw in zip(keys, raws, strict=True) if raw is not None}


def _pair(a: str, b: str) -> tuple[str, str]:
    a, b = a.strip(), b.strip()
    if not a or not b:
        raise ExplainError("name two people")
    if a == b:
        raise ExplainError("a pair is two different people")
    return (a, b) if a <= b else (b, a)


async def explain_many(
    settings: Settings,
    pairs: Iterable[tuple[str, str]] | None,
    *,
    timeout: float = 120.0,
    gone: set[str] | None = None,
) -> dict[tuple[str, str], Explained]:
    """``explain`` for many pairs at once, each changelog read once; ``pairs`` None: every
    pair the matcher keeps. A pair never in contact has no entry; a pair with a forgotten
    person has none either (the matcher drops them; their records may not be compacted
    away yet). ``gone``: the forgotten people's hashes, when the caller has read them."""
    wanted = None if pairs is None else {_pair(a, b) for a, b in pairs}
    if gone is None:
        gone = await _forgotten(settings)
    keys = None if wanted is None else {pair_key(a, b).encode() for a, b in wanted}
    states = {}
    for key, raw in (await latest(settings, "pairs", keys, timeout=timeout)).items():
        if not is_pair(key):  # the table also keeps each partition's counters
            continue
        state = logic.PairState.decode(raw)
        if person_hash(state.a) in gone or person_hash(state.b) in gone:
            continue
        states[(state.a, state.b) if state.a <= state.b else (state.b, state.a)] = state
    people = None if wanted is None else {p.encode() for pair in states for p in pair}
    read = await latest(settings, "circles", people, timeout=timeout) if people != set() else {}
    cs = {k.decode(): circles.Circle.decode(v) for k, v in read.items()}
    policy = policy_from(settings.matcher)

    def closest(x: str, y: str) -> int | None:
        return circles.mutual_rank(cs.get(x), cs.get(y), x, y)

    made = {
        pair_key(*pair).encode(): s.suggestion_id
        for pair, s in states.items()
        if s.suggestion_id is not None
    }
    found = await suggestions_by_id(settings, made, timeout=timeout) if made else {}
    delivered = await _delivery_decisions(settings, list(made)) if made else {}
    out = {}
    for pair, state in states.items():
        at = state.last_at if state.last_at is not None else time.time()
        decision = decisions.decide(state, policy, at, closest)
        key = pair_key(*pair).encode()
        out[pair] = Explained(decision, state, found.get(key), delivered.get(key))
    return out


async def resolve(settings: Settings, names: list[str], *, timeout: float = 120.0) -> list[str]:
    """Each name as the canonical person id: a source-qualified handle linked to a person
    (``mastodon:@ann@example.social``, on the compacted ``people.identities``) is that
    person; any other name is taken as a canonical id."""
    wanted = {n.strip().encode() for n in names if n.strip()}
    linked: dict[bytes, str] = {}
    if wanted:
        async for key, value in _records(settings, Topics(settings).identities, wanted, timeout):
            if value is None:
                linked.pop(key, None)
                continue
            try:
                linked[key] = str(orjson.loads(value)["person_id"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue  # not one of ours: the name stays as given
    return [linked.get(n.strip().encode(), n.strip()) for n in names]


async def explain(settings: Settings, a: str, b: str, *, timeout: float = 120.0) -> Explained:
    """The decision about ``a`` and ``b`` now (see the module), each named by a canonical id
    or a linked handle (`resolve`); each topic read may take ``timeout`` seconds."""
    _pair(a, b)  # a clear error before any read
    a, b = await resolve(settings, [a, b], timeout=timeout)
    pair = _pair(a, b)
    gone = await _forgotten(settings)
    for p in pair:
        if person_hash(p) in gone:
            raise ExplainError(f"{p} was forgotten: nothing about them is kept")
    got = await explain_many(settings, [pair], timeout=timeout, gone=gone)
    if pair not in got:
        raise ExplainError(f"no exchange between {a} and {b} is known")
    return got[pair]


@dataclass(frozen=True)
class Partner:
    """One partner in a person's circle, with the matcher's decision about the two."""

    partner: str
    rank: int
    #: the partner's share of the person's decayed exchange (the circle's total)
    share: float
    #: the pair's explanation; None when the matcher keeps no state for the pair (its
    #: exchanges were all too slight to track, or it was dropped)
    explained: Explained | None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"partner": self.partner, "rank": self.rank, "share": self.share}
        if self.explained is None:
            return out | {"tracked": False}
        d = self.explained.to_dict()
        keep = ("suggested", "decided_by", "would_change", "probability", "suggestion_id")
        return out | {"tracked": True} | {k: d.get(k) for k in keep} | {"now": d["now"]}


async def circle_of(
    settings: Settings, person: str, *, timeout: float = 120.0
) -> tuple[circles.Digest, list[Partner]]:
    """A person's circle (``circles`` changelog) and the decision about each partner in it,
    closest first: the console's pair inspector."""
    if not person.strip():
        raise ExplainError("name a person")
    [person] = await resolve(settings, [person], timeout=timeout)
    gone = await _forgotten(settings)
    if person_hash(person) in gone:
        raise ExplainError(f"{person} was forgotten: nothing about them is kept")
    read = await latest(settings, "circles", {person.encode()}, timeout=timeout)
    if person.encode() not in read:
        raise ExplainError(f"no circle is kept for {person} (no meaningful exchange known)")
    digest = circles.digest(circles.Circle.decode(read[person.encode()]))
    got = await explain_many(
        settings, [(person, p) for p, _ in digest.partners], timeout=timeout, gone=gone
    )
    partners = [
        Partner(p, rank, share, got.get((person, p) if person <= p else (p, person)))
        for rank, (p, share) in enumerate(digest.partners, start=1)
    ]
    return digest, partners


async def suggestions_by_id(
    settings: Settings, wanted: dict[bytes, str], *, timeout: float = 120.0
) -> dict[bytes, Suggestion]:
    """The suggestion of each pair key whose id is ``wanted[key]``, on ``meetup.suggestions``
    (keyed by pair: the partitions of those keys read once); a pair whose suggestion is no
    longer there (the topic's retention) has no entry."""
    found: dict[bytes, Suggestion] = {}
    async for key, value in _records(settings, Topics(settings).suggestions, set(wanted), timeout):
        if value is None:
            continue
        try:
            s = SUGGESTION_ADAPTER.validate_json(value)
        except ValidationError:
            continue  # not one of ours: the explanation goes on without it
        if s.suggestion_id == wanted[key]:
            found[key] = s
    return found
