"""The matcher's pair states (the faust table ``pairs``) and circles (``circles``), written a
batch at a time (`BatchStore`, `PairStore`).

faust writes a table one key at a time (a rocksdb put and a changelog send each). The matcher
writes many pair states per batch of records, so it stages them and writes them in bulk: the
changelog records first, appended to producer batches of each partition, and rocksdb (one
``WriteBatch`` per partition, with the table's persisted offset in it) once Kafka has
acknowledged them. Until then the writes are *in flight*: read from memory, not waited for.

So the local store is never ahead of the changelog. It holds exactly the changelog up to its
persisted offset, and a restart replays only newer records over it. faust's own order (rocksdb
first, the persisted offset saved later) let a crash leave rocksdb ahead of an older persisted
offset: the replay then put back older values of the keys written in every batch (the pair
count, the funnel counters) beside pair states it did not touch, and the pairs of the
redelivered records, found in the store, were not counted again.

A record's writes are staged apart from the batch's: a record whose handler fails is dropped
whole (`drop_record`), and the others of its batch are kept.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, Generic, Protocol, TypeVar, cast

import orjson
import rocksdict
import structlog
from faust.stores.rocksdb import Store as FaustRocksDB
from faust.types import TP

from services.common import records
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


#: A partition's staged writes are written out (between two records) once they reach this
#: many bytes, so that one write-out of a partition stays within one producer batch of the
#: changelog (512 KiB, services/common/worker.py): Kafka appends a batch whole or not at all,
#: so the pair states and the counts that count them reach the changelog together.
WRITE_OUT_BYTES: Final = 256 * 1024
#: a record's size in a batch beyond its key and value (a generous bound of its headers)
RECORD_OVERHEAD: Final = 32


T = TypeVar("T")


def is_pair(key: bytes) -> bool:
    """Whether a key of the table is a pair's (not the table's own bookkeeping)."""
    return not key.startswith(b"\x00")


def pair_count_key(partition: int) -> bytes:
    return PAIR_COUNT_PREFIX + str(partition).encode()


def counts_key(partition: int) -> bytes:
    return COUNTS_PREFIX + str(partition).encode()


#: `PairStore.get`'s marker for a key with no write pending (None is a pending delete)
_UNWRITTEN: Final = object()


class ChangelogProducer(Protocol):
    async def send_many(
        self, topic: str, partition: int, records: Any
    ) -> list[asyncio.Future[Any]]: ...


@dataclass(eq=False)
class InFlight:
    """One partition's write-out, sent to the changelog and not acknowledged yet."""

    items: dict[bytes, bytes | None]
    #: one per producer batch; None while they are being sent
    futures: list[asyncio.Future[Any]] | None = None

    def acknowledged(self) -> bool:
        return self.futures is not None and all(f.done() for f in self.futures)


def stop_worker() -> None:
    """A changelog write failed: the offsets of the records behind it must never be
    committed. Stop the worker now; its partitions are processed again from the last commit."""
    asyncio.get_running_loop().call_soon(os._exit, 70)


class Decoded(Generic[T]):
    """Decoded values of recently read keys (least recently used out first), each valid
    while the stored bytes are the same: a changelog replay after a rebalance changes them,
    and the value is simply decoded again."""

    def __init__(self, size: int, decode: Callable[[bytes], T]) -> None:
        self._items: OrderedDict[bytes, tuple[bytes, T]] = OrderedDict()
        self._size = size
        self._decode = decode

    def of(self, key: bytes, raw: bytes) -> T:
        """``raw`` (the bytes stored under ``key``) decoded, from the cache if it has them."""
        hit = self._items.get(key)
        if hit is not None and hit[0] == raw:
            self._items.move_to_end(key)
            return hit[1]
        value = self._decode(raw)
        self.remember(key, raw, value)
        return value

    def remember(self, key: bytes, raw: bytes, value: T) -> None:
        self._items[key] = (raw, value)
        self._items.move_to_end(key)
        if len(self._items) > self._size:
            self._items.popitem(last=False)

    def forget(self, key: bytes) -> None:
        self._items.pop(key, None)


class BatchStore:
    """A table's values by partition, written a batch at a time: staged writes, a batch
    write-out to the changelog and then rocksdb (see the module). The pair states' store
    (`PairStore`) and the circle stage's (``services.matcher.circle_stage``) are two."""

    def __init__(
        self,
        store: Any,
        producer: ChangelogProducer,
        changelog: str,
        *,
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
        # (None: the key is deleted)
        self._staged: dict[int, dict[bytes, bytes | None]] = defaultdict(dict)
        self._staged_bytes: dict[int, int] = defaultdict(int)
        self._batched: dict[int, dict[bytes, bytes | None]] = defaultdict(dict)
        self._batched_bytes: dict[int, int] = defaultdict(int)
        # written out, waiting for the changelog's acknowledgement, oldest first
        self._in_flight: dict[int, deque[InFlight]] = defaultdict(deque)

    # reads

    def get(self, key: bytes, partition: int) -> bytes | None:
        """The value of ``key`` in ``partition``, with the writes not in rocksdb yet (staged,
        batched, in flight) applied."""
        for writes in (self._staged.get(partition), self._batched.get(partition)):
            if writes and (raw := writes.get(key, _UNWRITTEN)) is not _UNWRITTEN:
                return cast(bytes | None, raw)
        in_flight = self._in_flight.get(partition)
        if in_flight:
            for written in reversed(in_flight):
                if (raw := written.items.get(key, _UNWRITTEN)) is not _UNWRITTEN:
                    return cast(bytes | None, raw)
        if self._db_for is not None:  # one rocksdb get, no faust dispatch
            return cast(bytes | None, self._db_for(partition).get(key))
        return cast(bytes | None, self._store.get(key))

    def stored_keys(self, partition: int, partitions: int) -> list[bytes]:
        """The keys of ``partition`` in the local store: what is written out and
        acknowledged (after `settle`, all of it), not what is staged."""
        if self._db_for is not None:  # rocksdict's keys() also lists faust's offset key
            keys = self._db_for(partition).keys()
            return [k for k in keys if k != FaustRocksDB.offset_key]
        return [k for k in self._store if records.partition_for(k, partitions) == partition]

    def in_flight(self, partition: int) -> int:
        """How many write-outs of the partition wait for the changelog's acknowledgement."""
        return len(self._in_flight.get(partition, ()))

    async def settle(self) -> None:
        """Wait until every write-out is acknowledged and in rocksdb, for a scan of the table
        through faust (a failed one stops the worker, see `_acknowledged`)."""
        futures = [
            f for waiting in self._in_flight.values() for w in waiting for f in w.futures or ()
        ]
        if futures:
            await asyncio.wait(futures)

    # writes

    def put(self, key: bytes, raw: bytes, partition: int) -> None:
        """``table[key] = raw``, staged until `write_out`."""
        self._staged[partition][key] = raw
        self._staged_bytes[partition] += len(key) + len(raw) + RECORD_OVERHEAD

    def delete(self, key: bytes, partition: int) -> None:
        """``del table[key]``, staged until `write_out` (a tombstone on the changelog)."""
        self._staged[partition][key] = None
        self._staged_bytes[partition] += len(key) + RECORD_OVERHEAD

    # the batch

    def staged_bytes(self, partition: int) -> int:
        """The size of the partition's staged writes (a key written twice counts twice)."""
        return self._staged_bytes.get(partition, 0)

    def keep_record(self) -> None:
        """The record's handler is done: its writes join the batch's."""
        for partition, items in self._staged.items():
            self._batched[partition].update(items)
            self._batched_bytes[partition] += self._staged_bytes.get(partition, 0)
        self._staged.clear()
        self._staged_bytes.clear()

    def full(self) -> bool:
        """Whether a partition's batched writes should be written out before the next record
        (see `WRITE_OUT_BYTES`)."""
        return any(n >= WRITE_OUT_BYTES for n in self._batched_bytes.values())

    def drop_record(self) -> None:
        """The record's handler failed: none of its writes is applied."""
        self._staged.clear()
        self._staged_bytes.clear()

    def drop_batch(self) -> None:
        """Cancelled or stopping: nothing of the batch is applied."""
        self._staged.clear()
        self._staged_bytes.clear()
        self._batched.clear()
        self._batched_bytes.clear()

    def _order(self, partition: int, items: dict[bytes, bytes | None]) -> None:
        """Put a partition's writes in the order they go to the changelog (in place)."""

    async def write_out(self) -> None:
        """Send the batch's writes to the changelog, a partition's in one go with its counts
        last; each partition's are written to rocksdb once Kafka has acknowledged them all
        (`_acknowledged`). A pair that several records changed is written once."""
        if not self._batched:
            return
        writes = dict(self._batched)
        self._batched.clear()
        self._batched_bytes.clear()
        for partition, items in writes.items():
            self._order(partition, items)
            written = InFlight(items)
            # in flight (readable) before the first await: the next record may read it
            self._in_flight[partition].append(written)
            futures = await self._producer.send_many(self.changelog, partition, items.items())
            if not futures:  # a producer that sent nothing acknowledges nothing
                raise RuntimeError(f"no changelog write for partition {partition}")
            written.futures = futures
            for fut in futures:
                fut.add_done_callback(partial(self._acknowledged, partition))

    def _acknowledged(self, partition: int, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            log.critical(
                "changelog_write_failed",
                error="cancelled" if fut.cancelled() else repr(fut.exception()),
            )
            self._on_write_failed()
            return
        # in the order they were sent: a later write-out never lands before an earlier one
        in_flight = self._in_flight[partition]
        while in_flight and in_flight[0].acknowledged():
            self._store_locally(partition, in_flight.popleft())

    def _store_locally(self, partition: int, written: InFlight) -> None:
        """An acknowledged write-out into rocksdb, in one ``WriteBatch`` with the table's
        persisted offset: the store and its offset never disagree."""
        assert written.futures is not None
        # the highest acknowledged: the first offset of the last producer batch (a restart
        # may apply the rest of that batch again, values the store already has)
        offset = max(f.result().offset for f in written.futures)
        if self._db_for is not None:
            batch = rocksdict.WriteBatch(raw_mode=True)
            for key, raw in written.items.items():
                if raw is None:
                    batch.delete(key)
                else:
                    batch.put(key, raw)
            batch.put(FaustRocksDB.offset_key, str(offset).encode())
            self._db_for(partition).write(batch)
            return
        for key, raw in written.items.items():
            if raw is None:
                self._store.pop(key, None)
            else:
                self._store[key] = raw
        self._store.set_persisted_offset(TP(self.changelog, partition), offset)


class PairStore(BatchStore):
    """Pair states by partition (a `BatchStore`), with a cache of decoded states and the
    per-partition pair counts and funnel counters."""

    def __init__(
        self,
        store: Any,
        producer: ChangelogProducer,
        changelog: str,
        *,
        cache_size: int,
        on_write_failed: Callable[[], None] = stop_worker,
    ) -> None:
        super().__init__(store, producer, changelog, on_write_failed=on_write_failed)
        # decoding a pair state costs far more than reading it
        self._decoded = Decoded(cache_size, logic.PairState.decode)
        # pairs tracked and funnel counters per partition as last written by this worker
        self._pair_counts: dict[int, int] = {}
        self._counts: dict[int, dict[str, int]] = {}

    def load(self, key: bytes, partition: int) -> logic.PairState | None:
        """The pair state of ``key``, decoded (or from the cache when the bytes are the same)."""
        raw = self.get(key, partition)
        return None if raw is None else self._decoded.of(key, raw)

    def delete(self, key: bytes, partition: int) -> None:
        super().delete(key, partition)
        self._decoded.forget(key)

    def save(self, key: bytes, partition: int, state: logic.PairState) -> None:
        raw = state.encode()
        self.put(key, raw, partition)
        self._decoded.remember(key, raw, state)

    def count_pairs(self, partition: int, delta: int) -> None:
        """Add ``delta`` to the partition's pair count (staged, like any other write)."""
        count_key = pair_count_key(partition)
        count = max(0, int(self.get(count_key, partition) or b"0") + delta)
        self.put(count_key, str(count).encode(), partition)
        self._pair_counts[partition] = count

    def pair_count(self, partition: int) -> int | None:
        """The partition's pair count; None while it is not known (being restored)."""
        if partition not in self._pair_counts:  # not written since this worker got it
            raw = self.get(pair_count_key(partition), partition)
            if raw is None:
                return None
            self._pair_counts[partition] = int(raw)
        return self._pair_counts[partition]

    def add_counts(self, partition: int, deltas: Mapping[str, int]) -> None:
        """Add to the partition's funnel counters (staged, like any other write)."""
        counts = dict(self.counts(partition) or {})
        for name, delta in deltas.items():
            counts[name] = counts.get(name, 0) + delta
        self.put(counts_key(partition), orjson.dumps(counts), partition)
        self._counts[partition] = counts

    def counts(self, partition: int) -> dict[str, int] | None:
        """The partition's funnel counters, with the batch's writes; None if there are none."""
        if partition in self._counts:
            return self._counts[partition]
        raw = self.get(counts_key(partition), partition)
        if raw is None:  # nothing counted in this partition yet (or still being restored)
            return None
        self._counts[partition] = orjson.loads(raw)
        return self._counts[partition]

    def partitions_moved(self) -> None:
        """After a rebalance, the counts are read again from the restored table."""
        self._pair_counts.clear()
        self._counts.clear()

    def drop_record(self) -> None:
        super().drop_record()
        self._pair_counts.clear()  # read again from what is written
        self._counts.clear()

    def drop_batch(self) -> None:
        super().drop_batch()
        self._pair_counts.clear()
        self._counts.clear()

    def _order(self, partition: int, items: dict[bytes, bytes | None]) -> None:
        # the counts last: Kafka keeps a partition's order, so if they are in the changelog,
        # so is every state they count
        for meta in (pair_count_key(partition), counts_key(partition)):
            if meta in items:
                items[meta] = items.pop(meta)
