"""Kafka adapters shared by the services: namespaced topic names, producers, admin, lag."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    TopicAlreadyExistsError,
    UnknownProducerId,
    for_code,
)
from aiokafka.structs import OffsetAndMetadata

from schemas import topics
from schemas.events import Interaction
from services.common import records
from services.common.settings import Settings
from services.matcher.scoring import scored

T = TypeVar("T")

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Topics:
    """Topic names and consumer groups inside one namespace."""

    settings: Settings

    def name(self, topic: str) -> str:
        return self.settings.prefixed(topic)

    @property
    def interactions(self) -> str:
        return self.name(topics.INTERACTIONS)

    @property
    def interactions_dlq(self) -> str:
        return self.name(topics.INTERACTIONS_DLQ)

    @property
    def suggestions(self) -> str:
        return self.name(topics.SUGGESTIONS)

    @property
    def suggestions_dlq(self) -> str:
        return self.name(topics.SUGGESTIONS_DLQ)

    @property
    def consent(self) -> str:
        return self.name(topics.PEOPLE_CONSENT)

    @property
    def tokens(self) -> str:
        return self.name(topics.PEOPLE_TOKENS)

    @property
    def forgotten(self) -> str:
        return self.name(topics.PEOPLE_FORGOTTEN)

    @property
    def webhooks(self) -> str:
        return self.name(topics.WEBHOOKS)

    @property
    def emails(self) -> str:
        return self.name(topics.EMAILS)

    @property
    def chat(self) -> str:
        return self.name(topics.CHAT)

    @property
    def chat_retry(self) -> str:
        return self.name(topics.CHAT_RETRY)

    @property
    def webhooks_retry(self) -> str:
        return self.name(topics.WEBHOOKS_RETRY)

    @property
    def held(self) -> str:
        return self.name(topics.HELD)

    @property
    def feeds(self) -> str:

        return self.name(topics.FEEDS)

    @property
    def feedback(self) -> str:

        return self.name(topics.FEEDBACK)

    @property
    def ticks(self) -> str:
        return self.name(topics.MATCHER_TICKS)

    @property
    def person_activity(self) -> str:
        return self.name(topics.PERSON_ACTIVITY)

    @property
    def groups(self) -> str:
        return self.name(topics.GROUPS)

    def raw(self, source: str) -> str:

        return self.name(topics.RAW_PREFIX + source)

    @property
    def raw_all(self) -> list[str]:
        return [self.raw(s) for s in topics.RAW_SOURCES]

    @property
    def profiles(self) -> str:
        return self.name(topics.PEOPLE_PROFILES)

    @property
    def identities(self) -> str:
        return self.name(topics.PEOPLE_IDENTITIES)

    def app_id(self, service: str) -> str:
        """The faust app id, which is also the consumer group and changelog prefix."""
        return self.settings.prefixed(f"realconnect-{service}")

    @property
    def raw_group(self) -> str:
        """The consumer group of the normalizer's raw deliveries (read outside faust, so not
        its app's group: services.common.batches)."""
        return self.settings.prefixed("realconnect-normalizer-raw")


def new_producer(
    settings: Settings, *, client_id: str, linger_ms: int | None = None
) -> AIOKafkaProducer:
    """An idempotent, ``acks=all`` producer: a retry never duplicates or reorders a record.
    ``linger_ms`` defaults to ``KAFKA__LINGER_MS``."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=settings.kafka.linger_ms if linger_ms is None else linger_ms,
        compression_type=settings.kafka.compression_type,
        max_batch_size=1024 * 1024,
        request_timeout_ms=30_000,
        partitioner=records.KafkaPartitioner(),
    )


#: Errors after which an idempotent producer cannot go on: its sequence numbers or producer id
#: no longer match what the broker holds (a broker restart can lose the producer's state).
#: The Java client bumps its epoch and goes on (KIP-360); aiokafka's producer keeps failing.
FATAL_PRODUCER_ERRORS: tuple[type[BaseException], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    ProducerFenced,
)


#: After this many writes in a row not acknowledged within the deadline, a `ProducerSlot`
#: starts a fresh producer (one that bootstraps again).
UNACKNOWLEDGED_REPLACE: Final = 2


class NotAcknowledged(KafkaError):  # type: ignore[misc]
    """Kafka did not acknowledge a write within the deadline (see `ProducerSlot.acknowledged`)."""


class ProducerSlot:
    """A service's idempotent producer, replaced by a fresh one (a new producer id) as soon
    as a send fails with one of ``FATAL_PRODUCER_ERRORS``, or when writes go unacknowledged
    twice in a row (the producer may know only brokers that are gone).

    ``make reliability`` caught it: after a broker restart, ingest's producer answered every
    send with OutOfOrderSequenceNumber, and ingest refused every event (503) until it was
    restarted. The failed send still fails (its request answers 503 and the client retries,
    which the dedupe and the matcher absorb); the sends after the replacement go through.
    """

    def __init__(
        self, factory: Callable[[], AIOKafkaProducer], *, ack_timeout_s: float = 10.0
    ) -> None:
        self._factory = factory
        self.ack_timeout_s = ack_timeout_s
        self.current = factory()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._retiring: set[asyncio.Task[None]] = set()  # replaced producers being stopped
        self._stopped = False
        self.replacements = 0
        self._unacknowledged = 0  # writes in a row not acknowledged within the deadline

    async def start(self) -> None:
        await self.current.start()

    async def stop(self) -> None:
        """Flush what is in flight, for at most ``ack_timeout_s``: every write waits for its
        acknowledgement that long (`acknowledged`), so once the service's requests are
        answered, a record still unsent was answered 503 and its client retries. With the
        brokers gone, aiokafka's own stop would wait for them for ever (until SIGKILL)."""
        self._stopped = True
        for task in list(self._tasks) + list(self._retiring):
            task.cancel()
        try:
            async with asyncio.timeout(self.ack_timeout_s):
                await self.current.stop()
        except TimeoutError:
            log.warning(
                "producer_stop_timed_out",
                after_s=self.ack_timeout_s,
                note="Kafka unreachable: what was unsent had been answered 503",
            )

    async def settled(self) -> None:
        """Wait until any replacement under way has finished."""
        await asyncio.sleep(0)  # a failed send's done-callback runs on the next loop turn
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def client(self) -> Any:
        return self.current.client

    async def partitions_for(self, topic: str) -> Any:
        return await self.current.partitions_for(topic)

    async def send(self, topic: str, **kwargs: Any) -> asyncio.Future[Any]:
        producer = self.current
        fut: asyncio.Future[Any] = await producer.send(topic, **kwargs)
        fut.add_done_callback(lambda f: self._check(f, producer))
        return fut

    async def acknowledged(self, work: Awaitable[T]) -> T:
        """``work`` (sends and the wait for their acknowledgements) within ``ack_timeout_s``,
        else `NotAcknowledged` (a KafkaError: the request answers 503 and the client
        retries). A single broker that died still looks like the leader to aiokafka, and its
        sends wait for a metadata refresh that never comes. A send cut short may still reach
        Kafka later: the retry is then a duplicate, which the event ids absorb."""
        try:
            async with asyncio.timeout(self.ack_timeout_s):
                result = await work
        except TimeoutError as exc:
            self._unacknowledged += 1
            if self._unacknowledged >= UNACKNOWLEDGED_REPLACE:
                # aiokafka asks only the brokers of its last metadata, never the bootstrap
                # servers again: if those brokers are gone (a young cluster's metadata may name
                # one broker), it waits forever. A fresh producer bootstraps again.
                self._schedule_replace(self.current, "writes not acknowledged")
            raise NotAcknowledged(
                f"Kafka did not acknowledge within {self.ack_timeout_s:g} s"
            ) from exc
        self._unacknowledged = 0
        return result

    def _check(self, fut: asyncio.Future[Any], producer: AIOKafkaProducer) -> None:
        if fut.cancelled() or self._stopped:
            return
        exc = fut.exception()
        if isinstance(exc, FATAL_PRODUCER_ERRORS) and producer is self.current:
            self._schedule_replace(producer, repr(exc))

    def _schedule_replace(self, producer: AIOKafkaProducer, reason: str) -> None:
        task = asyncio.get_running_loop().create_task(self._replace(producer, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _replace(self, failed: AIOKafkaProducer, reason: str) -> None:
        async with self._lock:
            if failed is not self.current or self._stopped:
                return  # already replaced (many sends fail at once)
            fresh = self._factory()
            try:
                await fresh.start()
            except KafkaError as exc:  # broker unreachable: the next fatal error tries again
                log.error("producer_not_replaced", reason=reason, error=str(exc))
                await self._retire(fresh)  # closed, not left to the garbage collector
                return
            self.current = fresh
            self.replacements += 1
            self._unacknowledged = 0
            log.warning("producer_replaced", reason=reason)
        # Its pending sends fail (their requests 503). Stopping it can wait for a dead
        # broker's request timeout: not in the way of the new producer.
        retire = asyncio.get_running_loop().create_task(self._retire(failed))
        self._retiring.add(retire)
        retire.add_done_callback(self._retiring.discard)

    @staticmethod
    async def _retire(failed: AIOKafkaProducer) -> None:
        with contextlib.suppress(KafkaError, asyncio.TimeoutError):
            await failed.stop()


async def send_interactions(
    producer: AIOKafkaProducer | ProducerSlot,
    topic: str,
    interactions: Sequence[Interaction],
    per_record: int,
    headers: list[tuple[str, bytes]] | None = None,
) -> list[asyncio.Future[Any]]:
    """Enqueue ``interactions`` in the layout of ``services.common.records``, each scored
    and without its text (``services.matcher.scoring.scored``: the topic never carries
    message text); returns the delivery futures (await them all before acknowledging
    anything)."""
    n = len(await producer.partitions_for(topic))
    futures = []
    for r in records.encode([scored(i) for i in interactions], n, per_record):
        futures.append(
            await producer.send(
                topic, key=r.key, value=r.value, partition=r.partition, headers=headers
            )
        )
    return futures


async def produce(
    producer: AIOKafkaProducer | ProducerSlot,
    topic: str,
    key: bytes,
    value: bytes | None,
    partition: int | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> Any:
    """Send one record and wait for its acknowledgement (its record metadata)."""
    sent = await producer.send(topic, key=key, value=value, partition=partition, headers=headers)
    return await sent


async def produce_interactions(
    producer: AIOKafkaProducer | ProducerSlot,
    topic: str,
    interactions: Sequence[Interaction],
    per_record: int,
) -> None:
    """`send_interactions`, then wait until Kafka acknowledged every record."""
    await asyncio.gather(*await send_interactions(producer, topic, interactions, per_record))


async def ensure_topics(
    settings: Settings, names: list[str] | None = None, compacted: Sequence[str] = ()
) -> list[str]:
    """Create the stack's topics (idempotent), and wait until the broker's metadata shows
    them. ``compacted`` names more topics to create compacted. Returns the names created."""
    t = Topics(settings)
    wanted = names if names is not None else [t.name(n) for n in topics.ALL]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        raw = {t.raw(s) for s in topics.RAW_SOURCES}
        retention = {"retention.ms": str(int(settings.kafka.raw_retention_hours * 3_600_000))}
        await _keep_raw_retention(admin, sorted(raw & existing & set(wanted)), retention)
        if not missing:
            return []
        compacted_names = {t.name(n) for n in topics.COMPACTED} | set(compacted)
        compaction = {"cleanup.policy": "compact"}

        def configs(name: str) -> dict[str, str]:
            return compaction if name in compacted_names else retention if name in raw else {}

        response = await admin.create_topics(
            [
                NewTopic(
                    n,
                    num_partitions=settings.kafka.partitions,
                    replication_factor=settings.kafka.replication_factor,
                    topic_configs=configs(n),
                )
                for n in missing
            ]
        )
        created = []
        for topic, code, message, *_ in response.topic_errors:
            if code == 0:
                created.append(topic)
            elif code != TopicAlreadyExistsError.errno:
                # Another process (or metadata that lagged behind a creation) is fine; any
                # other error is not.
                raise for_code(code)(f"creating {topic}: {message}")
        if created:
            await _until_visible(admin, created)
            log.info("topics_created", topics=created)
        return created
    finally:
        await admin.close()


async def _keep_raw_retention(
    admin: AIOKafkaAdminClient, names: list[str], retention: dict[str, str]
) -> None:
    """Existing raw topics (created before ``raw_retention_hours``, or changed by hand) get
    the configured retention. AlterConfigs replaces a topic's whole configuration, so the
    topic's own settings are read first and kept."""
    if not names:
        return
    described = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
    )
    changes = []
    for response in described:
        for _code, _msg, _type, name, entries in response.resources:
            own = {
                e[0]: e[1]
                for e in entries
                # (name, value, read_only, config_source, is_sensitive, synonyms): 1 = the
                # topic's own setting (DYNAMIC_TOPIC_CONFIG)
                if len(e) > 3 and e[3] == 1 and e[1] is not None
            }
            if own.get("retention.ms") != retention["retention.ms"]:
                changes.append(ConfigResource(ConfigResourceType.TOPIC, name, own | retention))
    if changes:
        for response in await admin.alter_configs(changes):
            for code, message, _type, name in response.resources:
                if code:
                    raise for_code(code)(f"setting the retention of {name}: {message}")
        log.info("raw_retention_set", topics=[c.name for c in changes], **retention)


async def delete_namespace_topics(bootstrap: str, namespaces: Sequence[str]) -> list[str]:
    """Delete every topic of these namespaces (``<namespace>.*``, faust's internal topics
    included). For throwaway namespaces (tests, benchmarks): each partition costs the broker
    open files, and a broker out of file descriptors stops accepting connections."""
    prefixes = tuple(f"{ns}." for ns in namespaces if ns)
    if not prefixes:
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        if doomed:
            await admin.delete_topics(doomed)
        return doomed
    finally:
        await admin.close()


async def _until_visible(admin: AIOKafkaAdminClient, names: list[str], timeout: float = 30) -> None:
    """Wait until new topics show in metadata with all partitions led: a creation is
    acknowledged by the controller before the brokers' metadata has caught up."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        described = await admin.describe_topics(names)
        ready = [
            d
            for d in described
            if d.get("error_code", 0) == 0
            and d.get("partitions")
            and all(p.get("leader", -1) >= 0 for p in d["partitions"])
        ]
        if len(ready) == len(names):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise KafkaError(f"topics not visible after {timeout} s: {names}")
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class GroupLag:
    topic: str
    group: str
    end: dict[int, int]
    committed: dict[int, int]

    @property
    def total_end(self) -> int:
        return sum(self.end.values())

    @property
    def lag(self) -> int:
        return sum(max(0, e - self.committed.get(p, 0)) for p, e in self.end.items())


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of ``topic`` (empty if it does not exist)."""
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        # The consumer's metadata only covers topics it has seen: refresh on first look-up.
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic) or set()
    return [TopicPartition(topic, p) for p in sorted(parts)]


async def partition_ends(consumer: AIOKafkaConsumer, topic: str) -> dict[int, int]:
    """The end (high-water) offset of every partition of ``topic``."""
    tps = await topic_partitions(consumer, topic)
    ends = await consumer.end_offsets(tps) if tps else {}
    return {tp.partition: off for tp, off in ends.items()}


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """``partition_ends`` with a short-lived consumer."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return await partition_ends(consumer, topic)
    finally:
        await consumer.stop()


async def committed_offsets(
    admin: AIOKafkaAdminClient, group: str, *, attempts: int = 60, backoff: float = 0.5
) -> dict[TopicPartition, OffsetAndMetadata]:
    """The group's committed offsets, retrying while the group coordinator is not available
    (on a fresh broker ``__consumer_offsets`` is created on first use, which takes a moment)."""
    for attempt in range(attempts):
        try:
            return await admin.list_consumer_group_offsets(group)  # type: ignore[no-any-return]
        except KafkaError as exc:
            if not exc.retriable or attempt == attempts - 1:
                raise
            await asyncio.sleep(backoff)
    raise AssertionError("unreachable")


async def group_lag(bootstrap: str, topic: str, group: str) -> GroupLag:
    """End offsets against the group's committed offsets, read from Kafka."""
    async with LagProbe(bootstrap) as probe:
        return await probe.lag(topic, group)


class LagProbe:
    """``group_lag`` on long-lived clients, for callers that ask many times a second (the
    benchmarks): one admin client and one consumer instead of a pair per question."""

    def __init__(self, bootstrap: str) -> None:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)

    async def __aenter__(self) -> LagProbe:
        await self._admin.start()
        await self._consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def lag(self, topic: str, group: str) -> GroupLag:
        ends, offsets = await asyncio.gather(
            partition_ends(self._consumer, topic), committed_offsets(self._admin, group)
        )
        committed = {tp.partition: m.offset for tp, m in offsets.items() if tp.topic == topic}
        return GroupLag(topic=topic, group=group, end=ends, committed=committed)

    async def waiting(self, topics: Iterable[str], group: str) -> dict[TopicPartition, int]:
        """The partitions of ``topics`` with records the group has not committed, each at
        the group's position there: its committed offset, or the partition's earliest
        offset where it never committed (older records may have gone with retention)."""
        tps = [
            tp for topic in sorted(topics) for tp in await topic_partitions(self._consumer, topic)
        ]
        if not tps:
            return {}
        ends, earliest, offsets = await asyncio.gather(
            self._consumer.end_offsets(tps),
            self._consumer.beginning_offsets(tps),
            committed_offsets(self._admin, group),
        )
        out = {}
        for tp in tps:
            meta = offsets.get(tp)
            at = meta.offset if meta is not None and meta.offset >= 0 else earliest[tp]
            if ends[tp] > at:
                out[tp] = at
        return out


def known_brokers(consumer: AIOKafkaConsumer) -> int:
    """How many brokers a started consumer's metadata knows, through aiokafka's private
    ``_client`` (aiokafka 0.14.0): the console's Kafka badge, without a request of its own."""
    return len(consumer._client.cluster.brokers())
