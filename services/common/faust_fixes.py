"""Fixes for three faust-streaming 0.15 races that stall or skip input partitions.

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

Offset gaps are logged (``offset_gap``). On a compacted topic they are expected; on the
others (interactions, ticks, suggestions: no compaction, no transactions) one means records
were skipped, and the log says where.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from faust.tables.manager import TableManager as _TableManager
from faust.tables.recovery import Recovery as _Recovery
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

log = structlog.get_logger(__name__)


class Consumer(faust_aiokafka.Consumer):
    def on_buffer_drop(self, tp: TP) -> None:
        if tp in self._paused_partitions:  # recovery paused it: resume_partitions brings it back
            self._buffered_partitions.discard(tp)
            return
        super().on_buffer_drop(tp)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # expected on compacted topics (people.profiles, .consent, ...); on interactions,
        # ticks or suggestions it means records were skipped
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
