"""A faust transport whose producer is idempotent with ``acks=all``.

faust-streaming enables idempotence only inside transactions (exactly-once mode); in
at-least-once mode a producer retry can then duplicate a changelog record or an output
message. Its consumer carries the fixes of ``services.common.faust_fixes``. Registered as
the ``ikafka://`` scheme through the ``faust.transports`` entry point.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any, Final

import structlog
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError, RequestTimedOutError
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.utils import DefaultSchedulingStrategy
from faust.types import TP

from services.common.backoff import Backoff
from services.common.faust_fixes import Consumer

log = structlog.get_logger(__name__)


class IdempotentProducer(faust_aiokafka.Producer):
    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}

    #: below this many records, ``send_many`` sends them one by one
    SEND_MANY_MIN = 64

    async def send_many(
        self, topic: str, partition: int, records: Collection[tuple[bytes, bytes | None]]
    ) -> list[asyncio.Future[Any]]:
        """Append ``(key, value)`` records to producer batches of one partition (aiokafka's
        batch API): a fraction of ``send``'s cost per record, which builds a future and
        looks up the partition and the running loop for each. One future per batch, with
        the batch's first offset. The batches join the producer's queue, so faust's flush
        before each offset commit waits for them as for any other send.

        aiokafka queues a new batch for a partition only once the one before it has been
        drained (after its linger): a few records are sent one by one instead, into the
        open batch, so that a stream of small records is never held up by that wait."""
        producer = self._ensure_producer()
        futures: list[asyncio.Future[Any]] = []
        if len(records) < self.SEND_MANY_MIN:
            for key, value in records:
                futures.append(await producer.send(topic, value, key=key, partition=partition))
            return futures
        return await send_in_batches(producer, topic, partition, records)


async def send_in_batches(
    producer: Any, topic: str, partition: int, records: Iterable[tuple[bytes, bytes | None]]
) -> list[asyncio.Future[Any]]:
    """``(key, value)`` records appended to producer batches of one partition (aiokafka's
    batch API), each batch sent when full: one future per batch, with its first offset."""
    futures: list[asyncio.Future[Any]] = []
    batch = producer.create_batch()
    for key, value in records:
        if batch.append(key=key, value=value, timestamp=None) is None:  # full
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"a record of {len(value or b'')} bytes exceeds a batch")
    if batch.record_count():
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


#: how long a worker keeps trying to declare a topic while the broker is unreachable
DECLARE_PATIENCE_S: Final = 120.0


class Transport(faust_aiokafka.Transport):
    Producer = IdempotentProducer
    Consumer = Consumer  # services.common.faust_fixes

    async def _create_topic(self, owner: Any, client: Any, topic: str, *a: Any, **kw: Any) -> None:
        """faust's declaration of a topic, retried while the broker is unreachable. A worker
        started while its broker restarts declared its topics into a dead connection, and
        faust's conductor crashed on the ``NodeNotReadyError`` and took the worker down
        (CI, test_matcher_broker_restart): a broker that is back within
        ``DECLARE_PATIENCE_S`` now costs a wait, not the worker."""
        backoff = Backoff(base=0.2, cap=5.0)
        deadline = asyncio.get_running_loop().time() + DECLARE_PATIENCE_S
        while True:
            try:
                await super()._create_topic(owner, client, topic, *a, **kw)
                return
            except (NodeNotReadyError, KafkaConnectionError, RequestTimedOutError) as exc:
                if owner.should_stop or asyncio.get_running_loop().time() > deadline:
                    raise
                delay = backoff.next()
                log.warning("topic_declare_retry", topic=topic, error=repr(exc), in_s=delay)
                await asyncio.sleep(delay)


class PartitionRuns(DefaultSchedulingStrategy):
    """The order in which a worker's streams get the records of one fetch: round robin
    between topics, as faust's own strategy, but within a topic a run of up to ``RUN``
    records of one partition before the next partition (faust's own alternates partitions
    record by record).

    A fetch already bounds what it takes of each partition (``max_partition_fetch_bytes``),
    so no partition waits for more than a fetch. Consecutive records of one partition let
    the matcher's batches (``MatcherSettings.batch_records``) hold several records of the
    same pairs, whose writes are then applied once."""

    RUN = 16

    def iterate(self, records: Mapping[TP, list[Any]]) -> Iterator[tuple[TP, Any]]:
        by_topic: dict[str, list[tuple[TP, list[Any]]]] = {}
        for tp, messages in records.items():
            by_topic.setdefault(tp.topic, []).append((tp, messages))
        runs = {topic: self._runs(tps) for topic, tps in by_topic.items()}
        while runs:
            for topic, it in list(runs.items()):
                item = next(it, None)
                if item is None:
                    del runs[topic]
                else:
                    yield item

    def _runs(self, tps: list[tuple[TP, list[Any]]]) -> Iterator[tuple[TP, Any]]:
        """A topic's records: runs of ``RUN`` records per partition, partitions in turn."""
        at = [0] * len(tps)
        left = True
        while left:
            left = False
            for i, (tp, messages) in enumerate(tps):
                start = at[i]
                if start >= len(messages):
                    continue
                at[i] = end = min(start + self.RUN, len(messages))
                left = left or end < len(messages)
                for message in messages[start:end]:
                    yield tp, message
