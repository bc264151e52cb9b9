"""The matcher's pair store alone (``services.matcher.store``): staging per record, one write
per batch to the changelog and, once acknowledged, to rocksdb with the persisted offset, the
decoded-state cache and the pair counts. rocksdb is real (rocksdict); the changelog producer
records what it is given and acknowledges when told (the real producer is exercised by the
matcher's integration and crash tests). A worker's restart is replayed here as faust does it:
the changelog records after the persisted offset are applied over the local store."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import rocksdict
from faust.stores.rocksdb import Store as FaustRocksDB
from faust.types import TP
from hypothesis import given, settings
from hypothesis import strategies as st

from services.matcher.pairs import new_pair
from services.matcher.store import COUNTS_PREFIX, PAIR_COUNT_PREFIX, PairStore


class Metadata:
    def __init__(self, partition: int, offset: int) -> None:
        self.partition, self.offset = partition, offset


class Changelog:
    """Records each send as Kafka would append it (offsets per partition); each call's future
    is resolved by `ack` (or failed by `fail`), oldest first."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, list[tuple[bytes, bytes | None]]]] = []
        self.log: dict[int, list[tuple[bytes, bytes | None]]] = {}
        self.futures: list[tuple[asyncio.Future[Any], int, int]] = []

    async def send_many(
        self, topic: str, partition: int, records: Any
    ) -> list[asyncio.Future[Any]]:
        records = list(records)
        self.sent.append((topic, partition, records))
        log = self.log.setdefault(partition, [])
        first = len(log)
        log.extend(records)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append((fut, partition, first))
        return [fut]

    def ack(self, n: int | None = None) -> None:
        """Acknowledge the oldest ``n`` sends (all of them by default)."""
        n = len(self.futures) if n is None else n
        for fut, partition, first in self.futures[:n]:
            fut.set_result(Metadata(partition, first))
        del self.futures[:n]

    def fail(self) -> None:
        for fut, _, _ in self.futures:
            fut.set_exception(RuntimeError("broker gone"))
        self.futures.clear()


OFFSET_KEY = FaustRocksDB.offset_key


class Memory(dict[bytes, bytes]):
    """faust's memory store as the pair store uses it: a mapping with a persisted offset."""

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        self.persisted = offset


class RocksStore:
    """What the store needs of faust's rocksdb store: a database per partition, a read across
    them, and the persisted offset per changelog partition."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dbs: dict[int, rocksdict.Rdict] = {}
        self.persisted: dict[TP, int] = {}

    def _db_for_partition(self, partition: int) -> rocksdict.Rdict:
        if partition not in self.dbs:
            self.dbs[partition] = rocksdict.Rdict(
                str(self.path / f"p{partition}"), options=rocksdict.Options(raw_mode=True)
            )
        return self.dbs[partition]

    def get(self, key: bytes) -> bytes | None:
        for db in self.dbs.values():
            if (raw := db.get(key)) is not None:
                return raw
        return None

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        self.persisted[tp] = offset

    def close(self) -> None:
        for db in self.dbs.values():
            db.close()


@pytest.fixture
def rocks(tmp_path: Path) -> Any:
    store = RocksStore(tmp_path)
    yield store
    store.close()


def make(store: Any, changelog: Changelog, **kw: Any) -> PairStore:
    return PairStore(
        store, changelog, "ns-pairs-changelog", cache_size=kw.pop("cache_size", 8), **kw
    )


async def test_a_record_s_writes_are_read_back_at_once_and_stored_only_once_acknowledged(
    rocks: Any,
) -> None:
    log = Changelog()
    pairs = make(rocks, log)
    state = new_pair("alice", "bob")
    pairs.save(b"alice|bob", 1, state)
    assert pairs.load(b"alice|bob", 1) == state  # staged: visible to the next read
    assert rocks._db_for_partition(1).get(b"alice|bob") is None  # not in rocksdb yet
    pairs.keep_record()
    assert pairs.get(b"alice|bob", 1) == state.encode()  # batched: still visible
    await pairs.write_out()
    assert log.sent == [("ns-pairs-changelog", 1, [(b"alice|bob", state.encode())])]
    assert pairs.get(b"alice|bob", 1) == state.encode()  # in flight: still visible
    assert rocks._db_for_partition(1).get(b"alice|bob") is None  # not before Kafka has it
    assert pairs.in_flight(1) == 1
    log.ack()
    await asyncio.sleep(0)  # done callbacks run on the loop
    assert rocks._db_for_partition(1).get(b"alice|bob") == state.encode()
    assert rocks._db_for_partition(1).get(OFFSET_KEY) == b"0"  # in the same WriteBatch
    assert pairs.in_flight(1) == 0


async def test_a_pair_changed_by_several_records_of_a_batch_is_written_once_with_its_last_state(
    rocks: Any,
) -> None:
    log = Changelog()
    pairs = make(rocks, log)
    first = new_pair("alice", "bob")
    second = replace(first, n_ab=2)
    pairs.save(b"alice|bob", 0, first)
    pairs.keep_record()
    pairs.save(b"alice|bob", 0, second)
    pairs.save(b"carol|dave", 2, new_pair("carol", "dave"))
    pairs.keep_record()
    await pairs.write_out()
    by_partition = {p: records for _, p, records in log.sent}
    assert by_partition == {
        0: [(b"alice|bob", second.encode())],
        2: [(b"carol|dave", new_pair("carol", "dave").encode())],
    }
    await pairs.write_out()  # nothing left: nothing sent again
    assert len(log.sent) == 2


async def test_a_failed_record_loses_its_own_writes_and_keeps_the_batch_s(rocks: Any) -> None:
    log = Changelog()
    pairs = make(rocks, log)
    pairs.save(b"alice|bob", 0, new_pair("alice", "bob"))
    pairs.keep_record()
    pairs.save(b"carol|dave", 0, new_pair("carol", "dave"))
    pairs.drop_record()
    assert pairs.get(b"carol|dave", 0) is None
    await pairs.write_out()
    assert [k for _, _, records in log.sent for k, _ in records] == [b"alice|bob"]


async def test_a_cancelled_batch_writes_nothing(rocks: Any) -> None:
    log = Changelog()
    pairs = make(rocks, log)
    pairs.save(b"alice|bob", 0, new_pair("alice", "bob"))
    pairs.keep_record()
    pairs.save(b"carol|dave", 0, new_pair("carol", "dave"))
    pairs.drop_batch()
    await pairs.write_out()
    assert log.sent == []
    assert pairs.get(b"alice|bob", 0) is None


async def test_write_outs_reach_rocksdb_in_the_order_sent_with_their_persisted_offset(
    rocks: Any,
) -> None:
    log = Changelog()
    pairs = make(rocks, log)
    for i in range(3):
        pairs.put(f"k{i}".encode(), f"v{i}".encode(), 3)
        pairs.put(b"k0", f"v{i}".encode(), 3)  # rewritten by every write-out
        pairs.keep_record()
        await pairs.write_out()
    db = rocks._db_for_partition(3)
    assert db.get(OFFSET_KEY) is None and db.get(b"k0") is None  # nothing acknowledged
    assert pairs.get(b"k0", 3) == b"v2"  # the newest write-out in flight
    log.ack(1)
    await asyncio.sleep(0)
    assert (db.get(b"k0"), db.get(b"k1"), db.get(OFFSET_KEY)) == (b"v0", None, b"0")
    assert pairs.get(b"k0", 3) == b"v2"
    log.ack()
    await asyncio.sleep(0)
    # the persisted offset is the first of the last producer batch (offsets 3 and 4): a
    # restart applies record 4 again, the value the store already has
    assert (db.get(b"k0"), db.get(b"k2"), db.get(OFFSET_KEY)) == (b"v2", b"v2", b"3")
    assert pairs.in_flight(3) == 0


async def test_the_counts_are_sent_after_the_states_they_count(rocks: Any) -> None:
    log = Changelog()
    pairs = make(rocks, log)
    pairs.count_pairs(0, 1)
    pairs.save(b"alice|bob", 0, new_pair("alice", "bob"))
    pairs.add_counts(0, {"interactions_processed": 1})
    pairs.save(b"carol|dave", 0, new_pair("carol", "dave"))
    pairs.keep_record()
    await pairs.write_out()
    keys = [k for _, _, records in log.sent for k, _ in records]
    assert keys[:2] == [b"alice|bob", b"carol|dave"]
    assert sorted(keys[2:]) == sorted([PAIR_COUNT_PREFIX + b"0", COUNTS_PREFIX + b"0"])


async def test_a_deleted_pair_is_gone_at_once_and_a_tombstone_on_the_changelog(
    rocks: Any,
) -> None:
    log = Changelog()
    pairs = make(rocks, log)
    state = new_pair("alice", "bob")
    pairs.save(b"alice|bob", 0, state)
    pairs.keep_record()
    await pairs.write_out()
    log.ack()
    await asyncio.sleep(0)
    pairs.delete(b"alice|bob", 0)
    assert pairs.load(b"alice|bob", 0) is None  # not from the decoded cache either
    pairs.keep_record()
    await pairs.write_out()
    assert log.sent[-1][2] == [(b"alice|bob", None)]
    assert rocks._db_for_partition(0).get(b"alice|bob") == state.encode()  # until acknowledged
    assert pairs.get(b"alice|bob", 0) is None
    log.ack()
    await asyncio.sleep(0)
    assert rocks._db_for_partition(0).get(b"alice|bob") is None


async def test_settle_waits_until_every_write_out_is_in_rocksdb(rocks: Any) -> None:
    log = Changelog()
    pairs = make(rocks, log)
    pairs.put(b"alice|bob", b"v", 2)
    pairs.keep_record()
    await pairs.write_out()
    waiting = asyncio.ensure_future(pairs.settle())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    log.ack()
    await asyncio.wait_for(waiting, 1)
    assert rocks._db_for_partition(2).get(b"alice|bob") == b"v"


async def test_a_failed_changelog_write_stops_the_worker_and_never_reaches_rocksdb(
    rocks: Any,
) -> None:
    log = Changelog()
    stopped: list[bool] = []
    pairs = make(rocks, log, on_write_failed=lambda: stopped.append(True))
    pairs.put(b"k", b"v", 0)
    pairs.keep_record()
    await pairs.write_out()
    log.fail()
    await asyncio.sleep(0)
    assert stopped == [True]
    db = rocks._db_for_partition(0)
    assert db.get(b"k") is None and db.get(OFFSET_KEY) is None


def restart(db: rocksdict.Rdict, changelog: list[tuple[bytes, bytes | None]]) -> dict[bytes, bytes]:
    """faust's recovery of one partition on the same machine: the changelog records after the
    persisted offset applied over the local store. The store's contents are returned."""
    persisted = int(db.get(OFFSET_KEY) or b"-1")
    for key, raw in changelog[persisted + 1 :]:
        if raw is None:
            db.delete(key)
        else:
            db[key] = raw
    return {k: v for k, v in db.items() if k != OFFSET_KEY}


def fresh_restore(changelog: list[tuple[bytes, bytes | None]]) -> dict[bytes, bytes]:
    """A new machine's restore: the whole changelog applied to nothing."""
    out: dict[bytes, bytes] = {}
    for key, raw in changelog:
        if raw is None:
            out.pop(key, None)
        else:
            out[key] = raw
    return out


# a run: batches of new pairs (each written out, its pair count with it), and how many of the
# sends waiting for an acknowledgement are acknowledged after each; then a kill, in which
# some of the unacknowledged sends had reached Kafka and the rest had not
RUNS = st.tuples(
    st.lists(st.tuples(st.integers(1, 4), st.integers(0, 3)), min_size=1, max_size=12),
    st.integers(0, 12),
)


@settings(max_examples=60, deadline=None)
@given(run=RUNS)
def test_a_killed_worker_restarts_to_what_the_changelog_holds_and_counts_its_pairs(
    run: tuple[list[tuple[int, int]], int], tmp_path_factory: pytest.TempPathFactory
) -> None:
    batches, landed = run

    async def go() -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
        rocks = RocksStore(tmp_path_factory.mktemp("rocks"))
        log = Changelog()
        pairs = make(rocks, log)
        n = 0
        for size, acks in batches:
            for _ in range(size):
                pairs.save(f"p{n}|q".encode(), 0, new_pair(f"p{n}", "q"))
                n += 1
            pairs.count_pairs(0, size)
            pairs.keep_record()
            await pairs.write_out()
            log.ack(acks)
            await asyncio.sleep(0)
        # the kill: the first `landed` of the unacknowledged sends reached Kafka
        reached = len(log.log.get(0, []))
        for _fut, _p, first in log.futures[landed:][:1]:
            reached = first
        changelog = log.log.get(0, [])[:reached]
        try:
            return restart(rocks._db_for_partition(0), changelog), fresh_restore(changelog)
        finally:
            rocks.close()

    local, fresh = asyncio.run(go())
    assert local == fresh  # the same machine restarts to what a new machine restores
    tracked = [k for k in local if not k.startswith(b"\x00")]
    assert int(local.get(PAIR_COUNT_PREFIX + b"0", b"0")) == len(tracked)


async def test_decoded_states_are_cached_while_the_stored_bytes_are_the_same() -> None:
    memory = Memory()  # the memory store of tests: no rocksdb databases
    pairs = PairStore(memory, Changelog(), "c", cache_size=1)
    state = new_pair("alice", "bob")
    memory[b"alice|bob"] = state.encode()
    first = pairs.load(b"alice|bob", 0)
    assert first == state
    assert pairs.load(b"alice|bob", 0) is first  # the same object: not decoded again
    changed = replace(state, n_ab=5)
    memory[b"alice|bob"] = changed.encode()  # e.g. a changelog replay after a rebalance
    assert pairs.load(b"alice|bob", 0) == changed
    memory[b"carol|dave"] = new_pair("carol", "dave").encode()
    pairs.load(b"carol|dave", 0)  # the cache holds one: alice|bob is evicted
    again = pairs.load(b"alice|bob", 0)
    assert again == changed
    assert pairs.load(b"alice|bob", 0) is again


async def test_pair_counts_are_stored_in_the_table_and_read_back_after_a_rebalance() -> None:
    memory = Memory()
    log = Changelog()
    pairs = PairStore(memory, log, "c", cache_size=4)
    assert pairs.pair_count(0) is None  # not known (being restored)
    pairs.count_pairs(0, 3)
    pairs.keep_record()
    pairs.count_pairs(0, -1)
    pairs.count_pairs(0, -5)  # never below zero
    pairs.keep_record()
    await pairs.write_out()
    assert memory == {}  # not before Kafka has it
    log.ack()
    await asyncio.sleep(0)
    assert memory[PAIR_COUNT_PREFIX + b"0"] == b"0"
    pairs.count_pairs(0, 4)
    pairs.keep_record()
    await pairs.write_out()
    pairs.partitions_moved()
    assert pairs.pair_count(0) == 4  # read from the table again


async def test_funnel_counts_are_written_with_the_batch_and_dropped_with_a_failed_record() -> None:
    memory = Memory()
    pairs = PairStore(memory, Changelog(), "c", cache_size=4)
    pairs.add_counts(1, {"interactions_processed": 5, "candidate_pairs": 1})
    pairs.keep_record()
    pairs.add_counts(1, {"interactions_processed": 7})  # this record fails: not counted
    pairs.drop_record()
    pairs.add_counts(1, {"interactions_processed": 2})
    pairs.keep_record()
    assert pairs.counts(1) == {"interactions_processed": 7, "candidate_pairs": 1}
    await pairs.write_out()
    pairs.partitions_moved()  # read back from the table, as after a rebalance
    assert pairs.counts(1) == {"interactions_processed": 7, "candidate_pairs": 1}
    pairs.add_counts(1, {"interactions_processed": 1})
    pairs.drop_batch()  # a batch that never got written (a crash): its counts are not kept
    assert pairs.counts(1) == {"interactions_processed": 7, "candidate_pairs": 1}
