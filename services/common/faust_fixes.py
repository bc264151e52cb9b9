"""Fixes for four faust-streaming 0.15 races that stall or skip input partitions.

Found by ``tests/integration/test_matcher_crash.py`` (one SIGKILL, then a restart): after
the restart, some input partitions committed one offset per second (the crash test timed
out in CI) and ``make reliability`` lost suggestions after repeated kills.

1. **Stream partitions resumed before the seek** (the race of faust-streaming #596; #216
   fixed the same order only for apps without tables). When table recovery completes,
   ``Recovery.on_recovery_completed`` resumes the input partitions and only *then* seeks
   them to their committed offsets, while the consumer's flow is already active (recovery
   resumed it to read the changelogs). The fetcher delivers records from the pre-seek
   position during the seek; afterwards the read offset jumps and faust books the jump
   as a "gap" (offsets it treats as done, as for a compacted topic). The ack list then
   holds both the gap and the real acks of the same offsets, and faust's commit advances
   by one offset per commit: a stalled partition. Records processed out of order before
   the seek also let faust commit past an offset not yet processed (#606's off-by-one).
   :class:`Recovery` seeks first, with the input partitions still paused.

2. **A paused partition re-activated by flow control.** ``Consumer.on_buffer_drop`` puts
   a partition back among the active ones when its stream buffer drains, even if recovery
   paused it meanwhile; records are then fetched before the seek, as in 1.
   :class:`Consumer` leaves paused partitions to ``resume_partitions``.

3. **A never-committed partition skipped after a failover.** ``perform_seek`` moves only
   partitions with a committed offset. When a worker takes over partitions the group has
   never committed (new partitions, a young deployment) and a fetch ran before they were
   paused (found with a warm standby: the promotion is instant), the fetched records were
   dropped and the position stayed past them: those records were never processed, and the
   partition looked idle. :class:`Recovery` seeks such partitions to their beginning while
   they are still paused (``bench/recovery.py`` found it).

4. **A worker assigned nothing for good after a broker restart.** A worker that joins its
   group just after the broker restarted can be the group's leader while the broker's
   metadata does not yet list the topics (the chaos test in CI: the matcher restarted, then
   the broker SIGKILLed and back 2 s later). faust's assignor skips every missing topic
   ("Ignoring missing topic"), then raises ``KeyError`` on the changelog of a global table
   (``_global_table_standby_assignments`` indexes the partition counts it just skipped).
   aiokafka parks that error until the consumer is polled, and a faust worker that is still
   starting does not poll: no assignment, no rejoin, an idle worker for ever.
   :class:`PartitionAssignor` assigns what the metadata lists (no standbys for a missing
   changelog) and, when topics were missing, refreshes the metadata until they are listed;
   aiokafka's leader then sees the partition counts change and the group rejoins with every
   partition. ``tests/integration/test_matcher_broker_restart.py`` reproduces it.

Offset gaps are logged (``offset_gap``). On a compacted topic they are expected, and so they
are on topics written in transactions (the matcher's suggestions, dead letters and pair
changelog: each commit or abort marker takes an offset, and an aborted transaction's records
are not read); on the others (interactions, ticks, feedback) one means records were skipped,
and the log says where.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Final

import structlog
from aiokafka.errors import KafkaConnectionError
from faust.assignor import PartitionAssignor as _PartitionAssignor
from faust.stores.memory import Store as MemoryStore
from faust.tables.manager import TableManager as _TableManager
from faust.tables.recovery import Recovery as _Recovery
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from services.common import bulk_restore
from services.common.backoff import Backoff
from services.common.faust_direct import DirectBatches

log = structlog.get_logger(__name__)

#: topics the matcher writes in transactions (services.common.transactions): offsets that hold
#: commit and abort markers, or an aborted transaction's records, are skipped by a reader
#: how long a worker's fetch may wait for records (faust: 1,500 ms)
FETCH_MAX_WAIT_MS: Final = 100
TRANSACTIONAL_TOPICS: Final = (
    ".meetup.suggestions",
    ".interactions.dlq",
    ".person.activity",
    ".meetup.groups",
    "-changelog",
)


#: how long a worker's consumer keeps trying to start while the broker is unreachable
START_PATIENCE_S: Final = 120.0


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def on_start(self) -> None:
        """faust's start of the consumer, retried while the broker is unreachable. A worker
        restarted while its broker was down crashed on "Unable to bootstrap" and exited
        (CI, test_chaos: a matcher SIGKILLed and restarted during a broker SIGKILL): a broker
        back within ``START_PATIENCE_S`` now costs a wait, not the worker."""
        backoff = Backoff(base=0.2, cap=5.0)
        deadline = asyncio.get_running_loop().time() + START_PATIENCE_S
        while True:
            try:
                await super().on_start()
                return
            except KafkaConnectionError as exc:
                if self.should_stop or asyncio.get_running_loop().time() > deadline:
                    raise
                failed, self._consumer = self._consumer, None
                if failed is not None:
                    try:
                        await failed.stop()
                    except Exception as stop_exc:  # a consumer that never started
                        log.debug("consumer_stop_after_failed_start", error=repr(stop_exc))
                delay = backoff.next()
                log.warning("consumer_start_retry", error=repr(exc), in_s=delay)
                await asyncio.sleep(delay)

    def _create_worker_consumer(self, transport: Any) -> Any:
        """faust's consumer, reading ``read_committed``: outputs of a transaction that was
        aborted (a worker killed in the middle of one, ``services.common.transactions``) are
        never read, by a stage, a table's recovery or a standby."""
        consumer = super()._create_worker_consumer(transport)
        # both read when the consumer starts (aiokafka 0.14)
        consumer._isolation_level = "read_committed"
        # faust waits up to 1.5 s for a fetch to fill. Records of a transaction become
        # readable when it commits, and a fetch already waiting was then answered only at
        # its deadline: measured, accept-to-feed p50 0.85 s at 5,000 events/s
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class Consumer(DirectBatches, faust_aiokafka.Consumer):
    """faust's consumer with the fixes below, reading ``read_committed``, and topics
    delivered in batches (``services.common.faust_direct``)."""

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def on_buffer_drop(self, tp: TP) -> None:
        if tp in self._paused_partitions:  # recovery paused it: resume_partitions brings it back
            self._buffered_partitions.discard(tp)
            return
        super().on_buffer_drop(tp)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # expected on compacted topics (people.profiles, .consent, ...) and on those written
        # in transactions (markers); on interactions, ticks or feedback it means records
        # were skipped
        if tp.topic.endswith(TRANSACTIONAL_TOPICS):
            await super()._add_gap(tp, offset_from, offset_to)
            return
        log.info(
            "offset_gap",
            topic=tp.topic,
            partition=tp.partition,
            offset_from=offset_from,
            offset_to=offset_to,
            committed=self._committed_offset.get(tp),
        )
        await super()._add_gap(tp, offset_from, offset_to)


class Recovery(_Recovery):
    async def _build_offsets(
        self, consumer: Any, tps: set[TP], destination: Any, title: str
    ) -> None:
        """Before faust reads the active changelog partitions one record at a time, those
        of rocksdb tables are restored in bulk (``services.common.bulk_restore``); faust
        then starts from the offsets that left."""
        if title == "active":
            targets = {}
            for tp in tps:
                store = getattr(self.tp_to_table.get(tp), "data", None)
                db_for = getattr(store, "_db_for_partition", None)
                persisted = destination.get(tp)
                # up to the highwater faust just read: it checks no offset is past it
                highwater = self.active_highwaters.get(tp)
                end = None if highwater is None else highwater + 1
                if db_for is not None:
                    db: Any = db_for(tp.partition)
                elif isinstance(store, MemoryStore):
                    db = bulk_restore.MemoryPartition(store.data)
                else:
                    continue
                targets[tp] = bulk_restore.Target(
                    db, None if persisted in (None, -1) else persisted, end
                )
            app: Any = self.app
            servers = ",".join(f"{u.host}:{u.port or 9092}" for u in app.conf.broker)
            restored = await bulk_restore.restore(
                servers,
                targets,
                should_stop=lambda: self.should_stop or self.signal_recovery_start.is_set(),
                client_id=f"{app.conf.id}-restore",
            )
            for tp, offset in restored.items():
                destination[tp] = offset
        await super()._build_offsets(consumer, tps, destination, title)

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        """faust's own, with the input partitions seeked *before* they are resumed."""
        app: Any = self.app
        consumer = app.consumer
        self.log.info("Restore complete!")
        await app.on_rebalance_complete.send()
        self._set_recovery_ended()
        callbacks = [
            asyncio.ensure_future(
                table.on_recovery_completed(
                    self.actives_for_table[table], self.standbys_for_table[table]
                )
            )
            for table in self.tables.values()
        ]
        if callbacks:
            await asyncio.wait(callbacks)
        assignment = consumer.assignment()
        if app.consumer_generation_id != generation_id:
            self.log.warning(
                f"Recovery rebalancing again app id "
                f"{app.consumer_generation_id} param {generation_id}"
            )
            return
        streams = {tp for tp in assignment if not self._is_changelog_tp(tp)}
        if assignment:
            self.log.info("Seek stream partitions to committed offsets (still paused).")
            consumer.pause_partitions(streams)
            await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
            # A partition the group never committed is not moved by the seek (aiokafka seeks
            # only to a committed offset): if a fetch ran before the pause, its records were
            # dropped and the read position is past them. Start those at the beginning, as
            # auto_offset_reset=earliest would have (fix 3 in the module docstring).
            uncommitted = sorted(tp for tp in streams if consumer._committed_offset.get(tp) is None)
            if uncommitted:
                self.log.info(f"Seek {len(uncommitted)} never-committed partitions to the start.")
                for tp in uncommitted:  # offset 0, or the earliest kept (auto_offset_reset)
                    await consumer.seek(tp, 0)
        consumer.resume_partitions(streams)
        self.completed.set()
        app.flow_control.resume()
        consumer.resume_flow()
        await app._fetcher.maybe_start()
        self.tables.on_actives_ready()
        if not app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        app.on_rebalance_end()
        self.log.info("Worker ready")


class TableManager(_TableManager):
    @property
    def recovery(self) -> _Recovery:
        if self._recovery is None:
            self._recovery = Recovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


class PartitionAssignor(_PartitionAssignor):
    """faust's assignor, which survives topics missing from the metadata (fix 4)."""

    _listing: asyncio.Task[None] | None = None

    def _perform_assignment(self, cluster: Any, member_metadata: Any) -> Any:
        subscribed = {t for m in member_metadata.values() for t in m.subscription}
        missing = sorted(t for t in subscribed if not cluster.partitions_for_topic(t))
        assignment = super()._perform_assignment(cluster, member_metadata)
        if missing:
            log.warning("assignment_topics_missing", topics=missing)
            if self._listing is None or self._listing.done():
                # runs on the consumer's own loop (aiokafka calls assign from it), after
                # aiokafka has taken its snapshot of the partition counts
                self._listing = asyncio.ensure_future(self._until_listed(missing))
        return assignment

    def _global_table_standby_assignments(
        self, assignments: Any, partitions_by_topic: Mapping[str, int]
    ) -> Any:
        # a changelog missing from the metadata has no partitions to stand by for (yet)
        return super()._global_table_standby_assignments(
            assignments, defaultdict(int, partitions_by_topic)
        )

    async def _until_listed(self, topics: list[str]) -> None:
        """Refresh the consumer's metadata until it lists ``topics`` (1 s, doubling up to
        30 s between tries). aiokafka's group leader compares partition counts on every
        metadata update and rejoins the group when they changed."""
        client = self.app.consumer._thread._ensure_consumer()._client  # type: ignore[attr-defined]
        wait = 1.0
        while True:
            await asyncio.sleep(wait)
            await client.force_metadata_update()
            still = [t for t in topics if not client.cluster.partitions_for_topic(t)]
            if not still:
                log.info("assignment_topics_listed", topics=topics)
                return
            wait = min(30.0, wait * 2)
