"""A consumer-group loop that hands batches of records to a handler and commits after it.

For stateless stages whose input is one small record per event (the normalizer's raw
webhook deliveries), faust's per-message path (its consumer thread, the conductor, the
stream iterator, one event object and ack per message) cost about half of the worker's CPU
under ``make bench``. This loop reads the same topics with aiokafka's ``getmany`` instead and
keeps what the faust agent guaranteed:

- **at least once**: a batch's offsets are committed only after its handler returned (so
  after everything it produced was acknowledged); if the handler raises, the process exits
  (code 70) *before* committing, and the batch is read again after the restart;
- **rebalances**: a partition is not revoked while a batch is being handled (the rebalance
  listener waits for it), and records of partitions lost meanwhile are left to their new
  owner, neither handled nor committed here;
- **batching**: a batch closes at ``max_records``, or ``wait_ms`` after its first record.

Tables still belong in faust agents: this is only for stages without table writes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from services.common.settings import Settings

log = structlog.get_logger(__name__)

Handler = Callable[[list[ConsumerRecord[bytes, bytes]]], Awaitable[None]]


class _WaitForBatch(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, lock: asyncio.Lock) -> None:
        self._lock = lock

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self._lock:  # the batch in hand is handled and committed first
            log.info("partitions_revoked", partitions=len(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("partitions_assigned", partitions=len(assigned))


class BatchConsumer:
    def __init__(
        self,
        settings: Settings,
        topics: Sequence[str],
        *,
        group_id: str,
        client_id: str,
        handle: Handler,
        max_records: int,
        wait_ms: int,
    ) -> None:
        self._topics = list(topics)
        self._handle = handle
        self._max, self._wait_s = max_records, wait_ms / 1000
        self._lock = asyncio.Lock()
        self._settings, self._group_id, self._client_id = settings, group_id, client_id
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "not running"
        return self._consumer

    async def run(self) -> None:
        """Consume until cancelled. A handler error or an unexpected one here exits the
        process (70): the batch was not committed and is read again after the restart."""
        kafka = self._settings.kafka
        self._consumer = AIOKafkaConsumer(  # in the running loop: aiokafka needs one
            bootstrap_servers=kafka.bootstrap_servers,
            group_id=self._group_id,
            client_id=self._client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._max,
            session_timeout_ms=int(kafka.session_timeout_s * 1000),
            heartbeat_interval_ms=int(kafka.heartbeat_interval_s * 1000),
        )
        self.consumer.subscribe(self._topics, listener=_WaitForBatch(self._lock))
        try:
            await self.consumer.start()
            while True:
                batch = await self._next_batch()
                if batch:
                    await self._settle(batch)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.critical("batch_consumer_failed", topics=self._topics, exc_info=True)
            os._exit(70)
        finally:
            await self.consumer.stop()

    async def _next_batch(self) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        """What has arrived, up to ``max_records``; once there is a first record, more is
        awaited until ``wait_ms`` after it (bigger batches: bigger arrays downstream)."""
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        count, loop = 0, asyncio.get_running_loop()
        closes: float | None = None
        while count < self._max:
            timeout = 1.0 if closes is None else closes - loop.time()
            if timeout <= 0:
                break
            got = await self.consumer.getmany(
                timeout_ms=int(timeout * 1000), max_records=self._max - count
            )
            for tp, records in got.items():
                batch.setdefault(tp, []).extend(records)
                count += len(records)
            if count and closes is None:
                closes = loop.time() + self._wait_s
            if not got and closes is None:
                return batch  # idle: let the caller loop (and be cancelled)
        return batch

    async def _settle(
        self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        async with self._lock:
            owned = self.consumer.assignment()
            mine = {tp: records for tp, records in batch.items() if tp in owned}
            if len(mine) < len(batch):
                log.info("records_left_to_new_owner", partitions=len(batch) - len(mine))
            if not mine:
                return
            await self._handle([r for records in mine.values() for r in records])
            offsets = {
                tp: OffsetAndMetadata(records[-1].offset + 1, "") for tp, records in mine.items()
            }
            try:
                await self.consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError) as exc:
                # the group moved on (this member was too slow or left): the new owner reads
                # these records again from the last commit, which is at least once
                log.warning("commit_failed", error=str(exc), partitions=len(offsets))
