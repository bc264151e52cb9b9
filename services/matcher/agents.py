"""Thin faust I/O around the matcher's handlers (``services.matcher.handlers``).

``interactions`` is keyed by the unordered pair at production time, so the ``pairs`` table is
co-partitioned with its input and no ``group_by`` repartition hop is needed. The same holds
for ``meetup.feedback`` (keyed by pair) and the matcher's own ``matcher.ticks`` (sent to an
explicit partition): every table write happens in the partition that owns the pair.

This module only declares: the topics, the tables, one agent per input topic and the timers.
What a record does is ``handlers.Matcher``'s.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, cast

import faust
import orjson
import redis
import structlog
from faust.types import TP

from services.common.faust_direct import deliver_in_batches
from services.common.faust_transport import IdempotentProducer
from services.common.kafka import Topics
from services.common.redis import Keys
from services.common.settings import Settings
from services.common.transactions import (
    TransactionalTopic,
    Transactions,
    default_transactional_id,
)
from services.common.worker import owned_partitions, survives
from services.matcher.circle_stage import CircleStage
from services.matcher.handlers import Matcher, Outputs
from services.matcher.store import BatchStore, PairStore

log = structlog.get_logger(__name__)


def waiting(app: faust.App, topic: str, partition: int, next_offset: int) -> bool:
    """Whether records of this partition are waiting after ``next_offset`` (as of the
    consumer's last fetch)."""
    try:
        highwater = app.consumer.highwater(TP(topic, partition))
    except Exception:  # not assigned (any more), or not fetched yet: not known to wait
        return False
    return highwater is not None and next_offset < highwater


def pairs_table(app: faust.App, settings: Settings) -> Any:
    """The pair states by pair key, in rocksdb, co-partitioned with ``interactions``."""
    return app.Table(
        "pairs",
        key_type=bytes,
        value_type=bytes,
        partitions=settings.kafka.partitions,
        options={  # memory bounded for all partitions together (see MatcherSettings)
            "memory_mb": settings.matcher.rocksdb_memory_mb,
            "write_buffer_size": settings.matcher.rocksdb_write_buffer_mb * 2**20,
            "max_write_buffer_number": 2,
        },
    )


def circle_store(app: faust.App, settings: Settings, changelog: Any) -> BatchStore:
    """Each person's circle, in a global table (every worker holds every circle, read when a
    pair is judged), written a batch at a time through ``changelog`` as the pair states are
    (``services.matcher.store``)."""
    table = app.GlobalTable(
        "circles", key_type=bytes, value_type=bytes, partitions=settings.kafka.partitions
    )
    return BatchStore(table.data, changelog, table.changelog_topic.get_topic_name())


def count_abort(settings: Settings) -> None:
    """A transaction that failed to commit, counted in Redis (``stats``:
    ``transaction_aborts``, which the console shows): the worker stops right after, and its
    own Prometheus counter goes with it. One blocking call, bounded, on the way out."""
    try:
        client = redis.Redis.from_url(
            settings.redis.url, socket_timeout=2, socket_connect_timeout=2
        )
        with client:
            client.hincrby(Keys(settings).stats, "transaction_aborts", 1)
    except redis.RedisError as exc:
        log.warning("transaction_abort_not_counted", error=repr(exc))


def outputs(
    app: faust.App,
    settings: Settings,
    raw_topic: Callable[[str], faust.TopicT],
    ticks: faust.TopicT,
) -> tuple[Transactions | None, Outputs, Any]:
    """Where the matcher writes: with ``MATCHER__EXACTLY_ONCE``, suggestions, dead letters
    and the pair changelog through one transactional producer (``services.common.
    transactions``); else through faust's producer. Returns the transactions (or None), the
    output topics and the changelog's producer."""
    t = Topics(settings)
    m = settings.matcher
    if not m.exactly_once:
        plain = Outputs(
            suggestions=raw_topic(t.suggestions),
            dead_letters=raw_topic(t.interactions_dlq),
            ticks=ticks,
            activity=raw_topic(t.person_activity) if m.circles else None,
            groups=raw_topic(t.groups) if m.circles and m.groups else None,
        )
        return None, plain, cast(IdempotentProducer, app.producer)
    # outputs, pair states and input offsets in one transaction per batch
    txn = Transactions(
        settings,
        transactional_id=m.transactional_id
        or default_transactional_id(t.app_id("matcher"), m.web_port),
        group_id=t.app_id("matcher"),
        on_abort=functools.partial(count_abort, settings),
    )
    atomic = Outputs(
        suggestions=TransactionalTopic(txn, t.suggestions),
        dead_letters=TransactionalTopic(txn, t.interactions_dlq),
        ticks=ticks,
        dead_letters_outside=raw_topic(t.interactions_dlq),
        activity=TransactionalTopic(txn, t.person_activity) if m.circles else None,
        groups=TransactionalTopic(txn, t.groups) if m.circles and m.groups else None,
    )
    return txn, atomic, txn


def register(app: faust.App, settings: Settings, redis: Any) -> Matcher:
    """Declare the matcher's topics, tables, agents and timers on ``app``."""
    t = Topics(settings)
    n = settings.kafka.partitions

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(name, key_serializer="raw", value_serializer="raw", partitions=n)

    interactions = raw_topic(t.interactions)
    ticks = raw_topic(t.ticks)
    table = pairs_table(app, settings)
    txn, topics, changelog = outputs(app, settings, raw_topic, ticks)
    matcher = Matcher(
        settings,
        redis,
        pairs=PairStore(
            table.data,
            changelog,
            table.changelog_topic.get_topic_name(),
            cache_size=settings.matcher.decoded_cache,
        ),
        table=table,
        # every worker holds every profile (small); copied from the compacted people.profiles
        profiles=app.GlobalTable("profiles", key_type=bytes, value_type=bytes, partitions=n),
        # answers as labelled examples (suggestion|person hash -> features, label): written by
        # the worker that owns the pair, read by every worker to refit the same model
        labels=app.GlobalTable("labels", key_type=bytes, value_type=bytes, partitions=n),
        topics=topics,
        transactions=txn,
        # each person's circle, folded from person.activity by the agent below; every worker
        # holds every circle (read when a pair is suggested), as it does profiles
        circles=CircleStage(
            circle_store(app, settings, changelog),
            partitions=n,
            k=settings.matcher.circle_size,
            half_life_days=settings.matcher.half_life_days,
        )
        if settings.matcher.circles
        else None,
        # which record suggested each group (services/matcher/handlers.py, find_groups)
        group_marks=app.GlobalTable("group_marks", key_type=bytes, value_type=bytes, partitions=n)
        if settings.matcher.circles and settings.matcher.groups
        else None,
    )

    # The hot path: each fetch's interactions records go to Matcher.match in one batch,
    # straight from the consumer (services.common.faust_direct), acknowledged after it.
    deliver_in_batches(
        app,
        t.interactions,
        matcher.match,
        max_records=settings.matcher.batch_records,
        max_wait_s=settings.matcher.batch_wait_ms / 1000,
    )

    @app.agent(interactions, concurrency=1)
    async def match(stream: faust.StreamT[bytes]) -> None:
        # subscribes the topic (its partitions are assigned with the pairs table); the
        # records reach it only if the direct path is off (a transport without it)
        async for events in cast(faust.Stream[bytes], stream).take_events(
            settings.matcher.batch_records, within=settings.matcher.batch_wait_ms / 1000
        ):
            await matcher.match(events)

    @app.agent(ticks, concurrency=1)
    async def tick(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await matcher.guarded((event,), matcher.on_tick, "tick")

    @app.agent(raw_topic(t.feedback), concurrency=1)
    async def answers(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await matcher.guarded((event,), matcher.on_feedback, "answers")

    @app.agent(raw_topic(t.forgotten), concurrency=1)
    async def forget(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            if event.key is None:
                continue
            if event.value is not None:
                await matcher.forget(event.key.decode())
            else:  # opted in again: tracked from now on
                matcher.forgotten.remove(event.key.decode())

    if settings.matcher.circles:

        @app.agent(raw_topic(t.person_activity), concurrency=1)
        async def circles(stream: faust.StreamT[bytes]) -> None:
            # by batch: one lock, one read and write of each circle and, with transactions,
            # one commit for the records of a batch
            async for events in cast(faust.Stream[bytes], stream).take_events(
                settings.matcher.batch_records, within=settings.matcher.batch_wait_ms / 1000
            ):
                await matcher.fold_circles(events)

    @app.agent(raw_topic(t.profiles), concurrency=1)
    async def copy_profiles(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            if event.key is not None:
                await matcher.on_profile(event)

    def owned() -> list[int]:
        return owned_partitions(app, t.interactions)

    def behind(partition: int) -> bool:
        return waiting(app, t.interactions, partition, matcher.due.next_offset.get(partition, 0))

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def reindex(sender: Any, **_: Any) -> None:
        matcher.partitions_moved()

    @app.timer(interval=settings.matcher.tick_interval_s)  # type: ignore[untyped-decorator]
    @survives
    async def send_ticks() -> None:
        """Tell each owned partition how far its buffered events may be applied."""
        for p, command in await matcher.ticks_due(owned(), behind):
            await ticks.send(key=b"tick", value=orjson.dumps(command), partition=p)

    @app.timer(interval=5.0)  # type: ignore[untyped-decorator]
    @survives
    async def load_forgotten() -> None:
        await matcher.forgotten.read()

    @app.timer(interval=settings.matcher.learn_refit_s)  # type: ignore[untyped-decorator]
    @survives
    async def refit_model() -> None:
        await matcher.refit()

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
    @survives
    async def publish_pair_counts() -> None:
        await matcher.publish(owned())

    return matcher
