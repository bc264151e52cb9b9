"""The matcher's pair states: the faust table ``pairs``, written a batch at a time.

faust writes a table one key at a time (a rocksdb put and a changelog send each). The matcher
writes many pair states per batch of records, so it stages them and writes them the way faust
would, in bulk: rocksdb first (one ``WriteBatch`` per partition), then the changelog records
appended to producer batches of that partition. faust flushes the producer before every offset
commit, as for its own writes; the table's persisted offset is the highest acknowledged
changelog offset, saved with the next record of the partition.

A record's writes are staged apart from the batch's: a record whose handler fails is dropped
whole (`drop_record`), and the others of its batch are kept.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol, cast

import orjson
import rocksdict
import structlog
from faust.types import TP

from services.common.rocksdb_store import partition_databases
from services.matcher import pairs as logic

log = structlog.get_logger(__name__)

#: Per-partition count of pairs, kept in the pairs table itself so that it is restored from
#: the same changelog as the pair states (and so always agrees with them).
PAIR_COUNT_PREFIX: Final = b"\x00meta:pairs:"
#: Per-partition funnel counters (a JSON object), kept the same way: written in the same
#: batch as the pair states they count, so a record handled again after a crash (its states
#: not written) is not counted twice, and one whose states were written is not counted again.
COUNTS_PREFIX: Final = b"\x00meta:counts:"


def is_pair(key: bytes) -> bool:
    """Whether a key of the table is a pair's (not the table's own bookkeeping)."""
    return not key.startswith(b"\x00")


class ChangelogProducer(Protocol):
    async def send_many(
        self, topic: str, partition: int, records: Any
    ) -> list[asyncio.Future[Any]]: ...


def stop_worker() -> None:
    """A changelog write failed: the offsets of the records behind it must never be
    committed. Stop the worker now; its partitions are processed again from the last commit."""
    asyncio.get_running_loop().call_soon(os._exit, 70)


class PairStore:
    """Pair states by partition: staged writes, a batch write-out to rocksdb and the changelog,
    the persisted offsets, a cache of decoded states and the per-partition pair counts."""

    def __init__(
        self,
        store: Any,
        producer: ChangelogProducer,
        changelog: str,
        *,
        cache_size: int,
        on_write_failed: Callable[[], None] = stop_worker,
    ) -> None:
        self._store = store  # the table's store: one read per look-up (the dict API costs two)
        # rocksdb (not the memory store of tests): each partition's database, read and
        # written directly (services/common/rocksdb_store.py)
        self._db_for = partition_databases(store)
        self._producer = producer
        self.changelog = changelog
        self._on_write_failed = on_write_failed
        # the writes of the record being handled, and those of the batch's records before it
        self._staged: dict[int, dict[bytes, bytes]] = defaultdict(dict)
        self._batched: dict[int, dict[bytes, bytes]] = defaultdict(dict)
        # highest acknowledged changelog offset per partition (lagging it is safe: recovery
        # then re-applies a few writes it already has)
        self._acked: dict[int, int] = {}
        # Decoding a pair state costs far more than reading it: the decoded form of recently
        # used pairs, valid while the stored bytes are the same (a changelog replay after a
        # rebalance changes them, and the entry is simply decoded again)
        self._decoded: OrderedDict[bytes, tuple[bytes, logic.PairState]] = OrderedDict()
        self._cache_size = cache_size
        # pairs tracked and funnel counters per partition as last written by this worker
        self._pair_counts: dict[int, int] = {}
        self._counts: dict[int, dict[str, int]] = {}

    # reads

    def get(self, key: bytes, partition: int) -> bytes | None:
        """The value of ``key`` in ``partition``, with the batch's writes not applied yet."""
        writes = self._staged.get(partition)
        if writes is not None and (raw := writes.get(key)) is not None:
            return raw
        writes = self._batched.get(partition)
        if writes is not None and (raw := writes.get(key)) is not None:
            return raw
        if self._db_for is not None:  # one rocksdb get, no faust dispatch
            return cast(bytes | None, self._db_for(partition).get(key))
        return cast(bytes | None, self._store.get(key))

    def load(self, key: bytes, partition: int) -> logic.PairState | None:
        """The pair state of ``key``, decoded (or from the cache when the bytes are the same)."""
        raw = self.get(key, partition)
        if raw is None:
            return None
        hit = self._decoded.get(key)
        if hit is not None and hit[0] == raw:
            self._decoded.move_to_end(key)
            return hit[1]
        state = logic.PairState.decode(raw)
        self._remember(key, raw, state)
        return state

    # writes

    def put(self, key: bytes, raw: bytes, partition: int) -> None:
        """``table[key] = raw``, staged until `write_out`."""
        self._staged[partition][key] = raw

    def save(self, key: bytes, partition: int, state: logic.PairState) -> None:
        raw = state.encode()
        self.put(key, raw, partition)
        self._remember(key, raw, state)

    def rewrite(self, key: bytes, partition: int) -> None:
        """Write a pair's stored value again. After a crash the local store can be ahead of
        the changelog (written, not yet acknowledged): the changelog, which a failover
        restores from, then has it too."""
        if (raw := self.get(key, partition)) is not None:
            self.put(key, raw, partition)

    def forget_cached(self, key: bytes) -> None:
        self._decoded.pop(key, None)

    def count_pairs(self, partition: int, delta: int) -> None:
        """Add ``delta`` to the partition's pair count (staged, like any other write)."""
        count_key = PAIR_COUNT_PREFIX + str(partition).encode()
        count = max(0, int(self.get(count_key, partition) or b"0") + delta)
        self.put(count_key, str(count).encode(), partition)
        self._pair_counts[partition] = count

    def pair_count(self, partition: int) -> int | None:
        """The partition's pair count; None while it is not known (being restored)."""
        if partition not in self._pair_counts:  # not written since this worker got it
            raw = self._store.get(PAIR_COUNT_PREFIX + str(partition).encode())
            if raw is None:
                return None
            self._pair_counts[partition] = int(raw)
        return self._pair_counts[partition]

    def add_counts(self, partition: int, deltas: Mapping[str, int]) -> None:
        """Add to the partition's funnel counters (staged, like any other write)."""
        counts = dict(self.counts(partition) or {})
        for name, delta in deltas.items():
            counts[name] = counts.get(name, 0) + delta
        self.put(COUNTS_PREFIX + str(partition).encode(), orjson.dumps(counts), partition)
        self._counts[partition] = counts

    def counts(self, partition: int) -> dict[str, int] | None:
        """The partition's funnel counters, with the batch's writes; None if there are none."""
        if partition in self._counts:
            return self._counts[partition]
        raw = self.get(COUNTS_PREFIX + str(partition).encode(), partition)
        if raw is None:  # nothing counted in this partition yet (or still being restored)
            return None
        self._counts[partition] = orjson.loads(raw)
        return self._counts[partition]

    def partitions_moved(self) -> None:
        """After a rebalance, the counts are read again from the restored table."""
        self._pair_counts.clear()
        self._counts.clear()

    # the batch

    def keep_record(self) -> None:
        """The record's handler is done: its writes join the batch's."""
        for partition, items in self._staged.items():
            self._batched[partition].update(items)
        self._staged.clear()

    def drop_record(self) -> None:
        """The record's handler failed: none of its writes is applied."""
        self._staged.clear()
        self._pair_counts.clear()  # read again from what is written
        self._counts.clear()

    def drop_batch(self) -> None:
        """Cancelled or stopping: nothing of the batch is applied."""
        self._staged.clear()
        self._batched.clear()
        self._pair_counts.clear()
        self._counts.clear()

    async def write_out(self) -> None:
        """Apply the batch's writes: rocksdb first, one WriteBatch per partition, then the
        changelog records. A pair that several records changed is written once."""
        if not self._batched:
            return
        writes = dict(self._batched)
        self._batched.clear()
        for partition, items in writes.items():
            if self._db_for is not None:
                batch = rocksdict.WriteBatch(raw_mode=True)
                for key, raw in items.items():
                    batch.put(key, raw)
                self._db_for(partition).write(batch)
            else:
                for key, raw in items.items():
                    self._store[key] = raw
            for fut in await self._producer.send_many(self.changelog, partition, items.items()):
                fut.add_done_callback(self._acknowledged)

    def _acknowledged(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            log.critical(
                "changelog_write_failed",
                error="cancelled" if fut.cancelled() else repr(fut.exception()),
            )
            self._on_write_failed()
            return
        md = fut.result()
        if md.offset > self._acked.get(md.partition, -1):
            self._acked[md.partition] = md.offset

    def persist_offset(self, partition: int) -> None:
        """Store the highest acknowledged changelog offset as the table's persisted offset."""
        if (offset := self._acked.pop(partition, None)) is not None:
            self._store.set_persisted_offset(TP(self.changelog, partition), offset)

    def _remember(self, key: bytes, raw: bytes, state: logic.PairState) -> None:
        self._decoded[key] = (raw, state)
        self._decoded.move_to_end(key)
        if len(self._decoded) > self._cache_size:
            self._decoded.popitem(last=False)
