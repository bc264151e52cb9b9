"""``realconnect explain A B``: why a pair was suggested, or why not (issue 39).

The pair's state is read where every matcher restores it from: the ``pairs`` table's
changelog, its partition read ``read_committed`` up to its end (the matcher need not be
running); the two people's circles likewise from the ``circles`` changelog, for the
person-relative decision. ``decisions.decide`` then walks the gates as of the pair's latest
exchange, with the settings' policy and the shipped model (a model refitted from answers lives
in the running matcher, and the record names the model it used). A suggested pair also shows
the record its suggestion carried (``Suggestion.decision``), the decision made then.

Bad input is a clear error: a pair of oneself, a forgotten person, a pair never in contact.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError
from redis.exceptions import RedisError

from schemas.events import pair_key
from schemas.people import person_hash
from schemas.suggestions import SUGGESTION_ADAPTER, Suggestion
from services.common.kafka import Topics
from services.common.records import partition_for
from services.common.redis import Keys, new_redis
from services.common.settings import Settings
from services.matcher import circles, decisions
from services.matcher import pairs as logic
from services.matcher.forgetting import Forgotten
from services.matcher.handlers import policy_from


class ExplainError(ValueError):
    """A question the command cannot answer: the message says why."""


@dataclass(frozen=True)
class Explained:
    #: the decision as of the pair's latest exchange, recomputed now
    now: decisions.Decision
    state: logic.PairState
    #: the pair's latest suggestion, with the decision it carried (None: never suggested)
    suggestion: Suggestion | None = None

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
        out["outcome"] = s.outcome
        out["exchanges"] = {f"{s.a}->{s.b}": s.n_ab, f"{s.b}->{s.a}": s.n_ba}
        out["last_exchange_at"] = logic.iso(s.last_at)
        return out


async def _records(
    settings: Settings, topic: str, keys: set[bytes], timeout: float
) -> AsyncIterator[tuple[bytes, bytes | None]]:
    """Each record of ``topic`` keyed by one of ``keys`` (their partitions read from the
    start to their end, ``read_committed``), in order, as ``(key, value)``."""
    n = settings.kafka.partitions
    tps = sorted({TopicPartition(topic, partition_for(k, n)) for k in keys})
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
                    if r.key in keys:
                        yield r.key, r.value
            for tp in list(left):
                if await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
    finally:
        await consumer.stop()


async def latest(
    settings: Settings, table: str, keys: set[bytes], *, timeout: float = 120.0
) -> dict[bytes, bytes]:
    """The latest value of each of ``keys`` on a matcher table's changelog (a tombstone
    removes it)."""
    topic = f"{Topics(settings).app_id('matcher')}-{table}-changelog"
    out: dict[bytes, bytes] = {}
    async for key, value in _records(settings, topic, keys, timeout):
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


async def explain(settings: Settings, a: str, b: str, *, timeout: float = 120.0) -> Explained:
    """The decision about ``a`` and ``b`` now (see the module); each topic read may take
    ``timeout`` seconds."""
    a, b = a.strip(), b.strip()
    if not a or not b:
        raise ExplainError("name two people")
    if a == b:
        raise ExplainError("a pair is two different people")
    redis = new_redis(settings)
    forgotten = Forgotten(redis, Keys(settings).forgotten)  # the matcher's own list
    try:
        await forgotten.read()
    finally:
        await redis.aclose()
    if not forgotten.loaded:  # read() logs and carries on: here an answer must wait
        raise RedisError("the list of forgotten people could not be read")
    for p in (a, b):
        if person_hash(p) in forgotten.hashes:
            raise ExplainError(f"{p} was forgotten: nothing about them is kept")
    key = pair_key(a, b).encode()
    got = await latest(settings, "pairs", {key}, timeout=timeout)
    if key not in got:
        raise ExplainError(f"no exchange between {a} and {b} is known")
    state = logic.PairState.decode(got[key])
    policy = policy_from(settings.matcher)
    read = await latest(settings, "circles", {a.encode(), b.encode()}, timeout=timeout)
    cs = {k.decode(): circles.Circle.decode(v) for k, v in read.items()}

    def closest(x: str, y: str) -> int | None:
        return circles.mutual_rank(cs.get(x), cs.get(y), x, y)

    at = state.last_at if state.last_at is not None else time.time()
    suggestion = None
    if state.suggestion_id is not None:
        suggestion = await latest_suggestion(settings, key, state.suggestion_id, timeout=timeout)
    return Explained(decisions.decide(state, policy, at, closest), state, suggestion)


async def latest_suggestion(
    settings: Settings, key: bytes, suggestion_id: str, *, timeout: float = 120.0
) -> Suggestion | None:
    """The suggestion ``suggestion_id`` of the pair ``key`` on ``meetup.suggestions`` (keyed
    by pair: one partition read); None if it is no longer there (the topic's retention)."""
    found = None
    async for _, value in _records(settings, Topics(settings).suggestions, {key}, timeout):
        if value is None:
            continue
        try:
            s = SUGGESTION_ADAPTER.validate_json(value)
        except ValidationError:
            continue  # not one of ours: the explanation goes on without it
        if s.suggestion_id == suggestion_id:
            found = s
    return found
