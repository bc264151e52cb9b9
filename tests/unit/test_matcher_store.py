"""The matcher's pair store alone (``services.matcher.store``): staging per record, one write
per batch to rocksdb and the changelog, the persisted offsets, the decoded-state cache and the
pair counts. rocksdb is real (rocksdict); the changelog producer records what it is given
(the real producer is exercised by the matcher's integration and crash tests)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import rocksdict
from faust.types import TP

from services.matcher.pairs import new_pair
from services.matcher.store import PAIR_COUNT_PREFIX, PairStore


class Metadata:
    def __init__(self, partition: int, offset: int) -> None:
        self.partition, self.offset = partition, offset


class Changelog:
    """Records each send; each call's future is resolved by `ack` (or failed by `fail`)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, list[tuple[bytes, bytes]]]] = []
        self.futures: list[tuple[asyncio.Future[Any], int]] = []
        self.next_offset: dict[int, int] = {}

    async def send_many(
        self, topic: str, partition: int, records: Any
    ) -> list[asyncio.Future[Any]]:
        records = list(records)
        self.sent.append((topic, partition, records))
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        first = self.next_offset.get(partition, 0)
        self.next_offset[partition] = first + len(records)
        self.futures.append((fut, partition))
        fut.first = first  # type: ignore[attr-defined]
        return [fut]

    def ack(self) -> None:
        for fut, partition in self.futures:
            fut.set_result(Metadata(partition, fut.first))  # type: ignore[attr-defined]
        self.futures.clear()

    def fail(self) -> None:
        for fut, _ in self.futures:
            fut.set_exception(RuntimeError("broker gone"))
        self.futures.clear()


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


async def test_a_record_s_writes_are_read_back_at_once_and_stored_only_with_the_batch(
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
    assert rocks._db_for_partition(1).get(b"alice|bob") == state.encode()
    assert log.sent == [("ns-pairs-changelog", 1, [(b"alice|bob", state.encode())])]


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


async def test_the_persisted_offset_is_the_highest_acknowledged_and_only_once_acknowledged(
    rocks: Any,
) -> None:
    log = Changelog()
    pairs = make(rocks, log)
    for i in range(3):
        pairs.put(f"k{i}".encode(), b"v", 3)
        pairs.keep_record()
        await pairs.write_out()
    pairs.persist_offset(3)
    assert rocks.persisted == {}  # nothing acknowledged: nothing persisted
    log.ack()
    await asyncio.sleep(0)  # done callbacks run on the loop
    pairs.persist_offset(3)
    assert rocks.persisted == {TP("ns-pairs-changelog", 3): 2}
    rocks.persisted.clear()
    pairs.persist_offset(3)  # persisted once: not again until a newer acknowledgement
    assert rocks.persisted == {}


async def test_a_failed_changelog_write_stops_the_worker(rocks: Any) -> None:
    log = Changelog()
    stopped: list[bool] = []
    pairs = make(rocks, log, on_write_failed=lambda: stopped.append(True))
    pairs.put(b"k", b"v", 0)
    pairs.keep_record()
    await pairs.write_out()
    log.fail()
    await asyncio.sleep(0)
    assert stopped == [True]
    pairs.persist_offset(0)
    assert rocks.persisted == {}


async def test_decoded_states_are_cached_while_the_stored_bytes_are_the_same() -> None:
    memory: dict[bytes, bytes] = {}  # the memory store of tests: no rocksdb databases
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
    memory: dict[bytes, bytes] = {}
    pairs = PairStore(memory, Changelog(), "c", cache_size=4)
    assert pairs.pair_count(0) is None  # not known (being restored)
    pairs.count_pairs(0, 3)
    pairs.keep_record()
    pairs.count_pairs(0, -1)
    pairs.count_pairs(0, -5)  # never below zero
    pairs.keep_record()
    await pairs.write_out()
    assert memory[PAIR_COUNT_PREFIX + b"0"] == b"0"
    pairs.count_pairs(0, 4)
    pairs.keep_record()
    await pairs.write_out()
    pairs.partitions_moved()
    assert pairs.pair_count(0) == 4  # read from the table again


async def test_funnel_counts_are_written_with_the_batch_and_dropped_with_a_failed_record() -> None:
    memory: dict[bytes, bytes] = {}
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
