"""Table partitions restored from their changelogs in bulk, before faust's own recovery.

faust restores a table one changelog record at a time: each goes through the consumer's
fetch loop, the conductor, the changelog queue and the recovery loop (which also recounts
what is left of every partition per record). ``make bench-recovery`` measured about 10,400
records/s: 957 s for the matcher's 10 M pairs on a new machine.

Here a worker's *active* changelog partitions of tables in a rocksdb store are first read
with a consumer of their own (large fetches, ``getmany``) and written with one rocksdb
``WriteBatch`` per partition per fetch, the partition's persisted offset in the same batch:
the database and its offset never disagree, so a restore cut short (a rebalance, a crash) is
resumed from where it stopped. faust's recovery then starts from those offsets and reads
only what was written meanwhile. Standby partitions are still kept up to date by faust.

Progress is logged every few seconds (``restoring``: records done and left, rate).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import rocksdict
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.stores.rocksdb import Store as FaustRocksDB
from faust.types import TP

log = structlog.get_logger(__name__)

#: records per ``getmany``, and bytes per fetch of a partition and of a whole fetch
MAX_RECORDS: Final = 50_000
PARTITION_FETCH_BYTES: Final = 16 * 2**20
FETCH_BYTES: Final = 64 * 2**20
PROGRESS_S: Final = 5.0


@dataclass
class Target:
    """One changelog partition to restore into ``db`` from after ``persisted`` (None: from
    its beginning), up to ``end`` (None: the end offset when the restore starts). ``db`` is
    a partition's rocksdb database, or a `MemoryPartition`."""

    db: Any
    persisted: int | None
    end: int | None = None


class MemoryPartition:
    """faust's memory store (tests, ``MATCHER__STORE=memory``) as a restore target: its dict,
    and the offset kept here (the memory store persists none)."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self.offset: int | None = None

    def write(self, batch: list[tuple[bytes, bytes | None]]) -> None:
        for key, value in batch:
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value


async def restore(
    bootstrap: str,
    targets: Mapping[TP, Target],
    *,
    should_stop: Callable[[], bool] = lambda: False,
    client_id: str = "bulk-restore",
) -> dict[TP, int]:
    """Bring each target up to its changelog's end offset (as of the start); the offset of
    the last record written, by partition. Stops early (what is written stays consistent)
    when ``should_stop()``."""
    if not targets:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        enable_auto_commit=False,
        group_id=None,
        max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
        fetch_max_bytes=FETCH_BYTES,
        fetch_max_wait_ms=100,
        # a transaction that was aborted (a worker killed mid-batch) is not restored
        isolation_level="read_committed",
    )
    await consumer.start()
    done: dict[TP, int] = {}
    try:
        tps = {TopicPartition(tp.topic, tp.partition): tp for tp in targets}
        consumer.assign(list(tps))
        ends = await consumer.end_offsets(list(tps))
        left: dict[TopicPartition, int] = {}
        for ktp, tp in tps.items():
            start = (targets[tp].persisted or -1) + 1
            end = ends[ktp] if targets[tp].end is None else min(ends[ktp], targets[tp].end)
            if start < end:
                consumer.seek(ktp, start)
                left[ktp] = end
        total = sum(left[k] - ((targets[tps[k]].persisted or -1) + 1) for k in left)
        restored = 0
        started = last_log = time.monotonic()
        if total:
            log.info("restoring", partitions=len(left), records_left=total)
        while left and not should_stop():
            fetched = await consumer.getmany(*left, timeout_ms=1000, max_records=MAX_RECORDS)
            for ktp, messages in fetched.items():
                if not messages or ktp not in left:
                    continue
                tp = tps[ktp]
                messages = [m for m in messages if m.offset < left[ktp]]
                if not messages:
                    continue
                last = messages[-1].offset
                _write(targets[tp].db, messages, last)
                done[tp] = last
                restored += len(messages)
            for ktp in list(left):
                # read to its end: the last offsets may be transaction markers or an aborted
                # transaction's records, never delivered; the partition is restored up to
                # there (what faust's recovery expects: the offset before the end)
                if await consumer.position(ktp) >= left[ktp]:
                    end = left.pop(ktp)
                    tp = tps[ktp]
                    if done.get(tp, -1) < end - 1:
                        _write(targets[tp].db, [], end - 1)
                        done[tp] = end - 1
            now = time.monotonic()
            if now - last_log >= PROGRESS_S:
                last_log = now
                log.info(
                    "restoring",
                    records_done=restored,
                    records_left=max(0, total - restored),
                    per_s=round(restored / (now - started)),
                )
        if total:
            elapsed = time.monotonic() - started
            log.info(
                "restored",
                records=restored,
                seconds=round(elapsed, 1),
                per_s=round(restored / elapsed) if elapsed else None,
                complete=not left,
            )
    finally:
        await consumer.stop()
    return done


def _write(db: Any, messages: list[Any], offset: int) -> None:
    """The records, and ``offset`` as the persisted offset, in one write."""
    if isinstance(db, MemoryPartition):
        db.write([(m.key, m.value) for m in messages])
        db.offset = offset
        return
    batch = rocksdict.WriteBatch(raw_mode=True)
    for m in messages:
        if m.value is None:
            batch.delete(m.key)
        else:
            batch.put(m.key, m.value)
    batch.put(FaustRocksDB.offset_key, str(offset).encode())
    db.write(batch)
