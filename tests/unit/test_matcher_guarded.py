"""The matcher's answer to faust acknowledging a record whose agent raised (faust's stream
``finally`` acks it): `Matcher.guarded` never lets an error escape. A record whose handler
fails is dead-lettered whole and its writes are dropped while the batch's other records are
kept; a Kafka error stops the worker before anything of the batch is acknowledged.
Deterministic, without a broker: the pair store is the memory store, the topics record what
is sent (the real path is tests/integration/test_hostile_records.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from services.common import records
from services.common.settings import Settings
from services.matcher import handlers, pairs
from services.matcher.handlers import Matcher, Outputs
from services.matcher.store import PairStore, is_pair
from tests.factories import interaction


class Sent:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def send(self, **record: Any) -> asyncio.Future[Any]:
        self.records.append(record)
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class Changelog:
    def __init__(self) -> None:
        self.sent: list[tuple[int, list[tuple[bytes, bytes]]]] = []

    async def send_many(self, topic: str, partition: int, records: Any) -> list[Any]:
        self.sent.append((partition, list(records)))
        acked: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        acked.set_result(SimpleNamespace(partition=partition, offset=len(self.sent) - 1))
        return [acked]


class MemoryStore(dict[bytes, bytes]):
    """faust's memory store as the pair store uses it: a mapping with a persisted offset."""

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        pass


def event(offset: int) -> Any:
    message = SimpleNamespace(
        key=b"k", value=b"v", topic="t.interactions", partition=0, offset=offset, headers=[]
    )
    return SimpleNamespace(message=message, key=b"k", value=b"v")


def matcher(outside: Sent | None = None) -> tuple[Matcher, Sent, Changelog]:
    """``outside``: where dead letters of records handled outside a transaction go."""
    dead, changelog = Sent(), Changelog()
    pairs = PairStore(MemoryStore(), changelog, "pairs-changelog", cache_size=8)
    topics = Outputs(
        suggestions=Sent(),
        dead_letters=dead,
        ticks=Sent(),  # type: ignore[arg-type]
        dead_letters_outside=outside,  # type: ignore[arg-type]
    )
    m = Matcher(
        Settings(namespace="unit"),
        None,
        pairs=pairs,
        table={},
        profiles={},
        labels={},
        topics=topics,
    )
    return m, dead, changelog


async def test_a_failing_record_is_dead_lettered_whole_and_the_batch_s_others_are_kept() -> None:
    m, dead, changelog = matcher()

    async def handle(e: Any) -> None:
        m.pairs.put(f"pair{e.message.offset}".encode(), b"state", 0)
        if e.message.offset == 1:
            raise ValueError("a bug met by this record")

    await m.guarded([event(0), event(1), event(2)], handle, "match")  # nothing escapes
    assert [r["headers"] for r in dead.records] and len(dead.records) == 1
    headers = dict(dead.records[0]["headers"])
    assert headers["dlq.reason"] == b"processing_error"
    assert headers["dlq.offset"] == b"1"
    written = [key for _, records in changelog.sent for key, _ in records]
    assert written == [b"pair0", b"pair2"]  # the failed record's write is dropped


async def test_a_kafka_error_stops_the_worker_before_anything_is_acknowledged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m, dead, changelog = matcher()
    exits: list[int] = []

    def exit_now(code: int) -> None:
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(handlers.os, "_exit", exit_now)

    async def handle(e: Any) -> None:
        m.pairs.put(b"pair", b"state", 0)
        raise KafkaConnectionError("broker gone")

    with pytest.raises(SystemExit):
        await m.guarded([event(0)], handle, "match")
    assert exits == [70]
    assert changelog.sent == [] and dead.records == []  # nothing written, nothing dead-lettered


async def test_a_large_batch_is_written_out_between_records_to_fit_one_producer_batch() -> None:
    m, _, changelog = matcher()
    value = b"x" * (100 * 1024)  # three of these pass store.WRITE_OUT_BYTES (256 KiB)

    async def handle(e: Any) -> None:
        m.pairs.put(f"pair{e.message.offset}".encode(), value, 0)

    await m.guarded([event(i) for i in range(4)], handle, "match")
    written = [[key for key, _ in records] for _, records in changelog.sent]
    assert written == [[b"pair0", b"pair1", b"pair2"], [b"pair3"]]


def interaction_record(offset: int, actor: str, target: str, n: int, hours: int = 0) -> Any:
    """One interaction record keyed by its pair, in the pair's partition, ``hours`` after T0."""
    i = interaction(
        actor, target, kind="reply", text="What did you think of the talk?", days=hours / 24
    )
    key = i.key.encode()
    message = SimpleNamespace(
        key=key,
        value=i.model_dump_json().encode(),
        topic="t.interactions",
        partition=records.partition_for(key, n),
        offset=offset,
        headers=[],
        timestamp=1.0,
    )
    return SimpleNamespace(message=message, key=key, value=message.value)


async def test_a_batch_whose_core_fails_for_one_pair_is_handled_again_record_by_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hot path groups a batch by pair; if the pure core raises for one pair, nothing of
    the batch has been sent or written, and the batch is handled again one record at a time:
    the record at fault is dead-lettered whole, the others are applied once."""
    m, dead, changelog = matcher()
    m.forgotten.loaded = True
    # every path into the core (receive, receive_many) makes the buffered form of an event
    pending_of = pairs._pending_of

    def failing(state: Any, i: Any, *args: Any, **kw: Any) -> Any:
        if i.actor == "mallory":
            raise ValueError("a bug met by this record")
        return pending_of(state, i, *args, **kw)

    monkeypatch.setattr(pairs, "_pending_of", failing)
    batch = [
        interaction_record(0, "ann", "ben", m.n),
        interaction_record(1, "mallory", "ben", m.n),
        interaction_record(2, "cat", "dan", m.n),
    ]
    await m.match(batch)
    assert len(dead.records) == 1
    assert dict(dead.records[0]["headers"])["dlq.offset"] == b"1"
    written = {key for _, records in changelog.sent for key, _ in records if is_pair(key)}
    assert written == {b"ann|ben", b"cat|dan"}
    state = m.pairs.load(b"ann|ben", batch[0].message.partition)
    assert state is not None and len(state.pending) == 1  # its partition's newest instant


async def test_a_batch_writes_each_pair_once_with_every_event_of_it_applied() -> None:
    """Three records of one pair (an hour apart) and one of another in one batch: each pair
    state is sent to the changelog once, holding all its events (hand-counted: 3 replies
    a -> b, the two older applied, the newest waiting as its partition's newest instant)."""
    m, dead, changelog = matcher()
    m.forgotten.loaded = True
    batch = [interaction_record(k, "ann", "ben", m.n, hours=k) for k in range(3)]
    batch.append(interaction_record(3, "cat", "dan", m.n))
    await m.match(batch)
    assert dead.records == []
    written = [key for _, records in changelog.sent for key, _ in records if is_pair(key)]
    assert sorted(written) == [b"ann|ben", b"cat|dan"]
    state = m.pairs.load(b"ann|ben", batch[0].message.partition)
    assert state is not None and (state.n_ab, state.x_ab, len(state.pending)) == (2, 2, 1)
    counts = m.pairs.counts(batch[0].message.partition)
    assert counts is not None and counts["interactions_processed"] >= 3


async def test_a_bad_profile_during_another_agent_s_batch_is_dead_lettered_outside_it() -> None:
    """The profiles agent takes no lock: its dead letter goes outside any transaction even
    while another agent's batch (and transaction) is open. It went into that transaction,
    from a second task, when "a batch is open" was one flag for the whole matcher (CI: the
    producer's state machine failed and the worker stopped)."""
    outside = Sent()
    m, dead, _ = matcher(outside)
    inside, release = asyncio.Event(), asyncio.Event()

    async def handle(e: Any) -> None:  # a batch that holds the lock until released
        inside.set()
        await release.wait()

    batch = asyncio.create_task(m.guarded([event(0)], handle, "answers"))
    await inside.wait()
    profile = SimpleNamespace(
        key=b"cns:1", value=b"this is not a profile", message=event(5).message
    )
    await m.on_profile(profile)  # type: ignore[arg-type]
    release.set()
    await batch
    assert len(outside.records) == 1 and dead.records == []
    assert dict(outside.records[0]["headers"])["dlq.reason"] == b"profile"
