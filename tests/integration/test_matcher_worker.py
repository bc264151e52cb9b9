"""The matcher as a real faust worker on the real broker: suggestions out, poison dead-lettered."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer

from schemas.events import Interaction
from services import pipeline
from services.common import records as records_layout
from services.common.dlq import redacted
from services.common.kafka import Topics, ensure_topics, new_producer
from services.common.settings import Settings
from tests.factories import WEEKS_OF_TALK_TRIGGER, conversation, interaction, weeks_of_talk
from tests.stack import ServiceStack


async def produce(settings: Settings, records: list[tuple[bytes, bytes]]) -> None:
    producer = new_producer(settings, client_id="test")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(Topics(settings).interactions, key=key, value=value)
    finally:
        await producer.stop()


def records(events: list[Interaction]) -> list[tuple[bytes, bytes]]:
    return [(e.key.encode(), e.model_dump_json().encode()) for e in events]


async def read_dlq(settings: Settings, expected: int, timeout: float = 30) -> list:
    consumer = AIOKafkaConsumer(
        Topics(settings).interactions_dlq,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",  # what readers downstream see
    )
    await consumer.start()
    out: list = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for recs in (await consumer.getmany(timeout_ms=500)).values():
                out += recs
    finally:
        await consumer.stop()
    return out


async def test_matcher_suggests_real_conversations_and_dead_letters_poison(
    settings: Settings, stack_factory: list[ServiceStack], tmp_path: Path
) -> None:
    await ensure_topics(settings)
    stack = ServiceStack(settings, tmp_path, ("matcher",))
    stack_factory.append(stack)
    await asyncio.to_thread(stack.start)

    talk = weeks_of_talk("ann", "ben")  # suggested at its twelfth event, the default gate
    likes = conversation("cat", "dan", per_direction=10, days=5, kind="like")
    one_sided = [interaction("fan", "star", days=d) for d in range(10)]
    poison = [
        (b"x|y", b"not json at all"),
        (b"ann|zed", interaction("ann", "zed").model_dump_json().encode() + b"garbage"),
        (b"wrong|key", interaction("eve", "fay").model_dump_json().encode()),
    ]
    # Poison first: the worker must keep going and still process what follows.
    await produce(settings, poison + records(likes + one_sided + talk))
    await pipeline.drain_matcher(settings, timeout=60)

    out = await pipeline.read_suggestions(settings, idle_s=2.0)
    assert [s.pair for s in out] == [("ann", "ben")]
    assert out[0].evidence["exchanges"] == {"ann->ben": 6, "ben->ann": 6}
    assert out[0].suggested_at == talk[WEEKS_OF_TALK_TRIGGER].occurred_at

    dead = await read_dlq(settings, expected=3)
    # the original record, its message text redacted (services/common/dlq.py)
    assert sorted(r.value for r in dead) == sorted(redacted(v) for _, v in poison)
    reasons = sorted(dict(r.headers)["dlq.reason"].decode() for r in dead)
    assert reasons == ["key", "schema", "schema"]
    assert all(dict(r.headers)["dlq.service"] == b"matcher" for r in dead)
    assert stack.procs["matcher"].poll() is None  # still running
    # exactly once by default: its outputs went out in transactions
    assert "transactions_started" in stack.log("matcher").read_text(errors="replace")


async def test_replaying_the_same_events_again_suggests_nothing_new(
    settings: Settings, stack_factory: list[ServiceStack], tmp_path: Path
) -> None:
    """At-least-once redelivery (the same events twice) never yields a second suggestion.
    This one runs the matcher with the in-memory table store and without transactions
    (``MATCHER__EXACTLY_ONCE=false``: faust's producer, at least once, the pair states'
    event ids deduplicate); the others with rocksdict and transactions."""
    await ensure_topics(settings)
    stack = ServiceStack(
        settings,
        tmp_path,
        ("matcher",),
        REALCONNECT_MATCHER__STORE="memory",
        REALCONNECT_MATCHER__EXACTLY_ONCE="false",
    )
    stack_factory.append(stack)
    await asyncio.to_thread(stack.start)
    talk = records(weeks_of_talk("ann", "ben"))
    await produce(settings, talk + talk)
    await pipeline.drain_matcher(settings, timeout=60)
    out = await pipeline.read_suggestions(settings, idle_s=2.0, unique=False)
    assert len(out) == 1
    log = stack.log("matcher").read_text(errors="replace")
    assert "transactions_started" not in log  # the plain path ran, not the transactional


async def test_array_records_are_processed_and_their_poison_elements_dead_lettered_alone(
    settings: Settings, stack_factory: list[ServiceStack], tmp_path: Path
) -> None:
    """Several interactions per record: the valid ones count, an invalid element and one in
    the wrong partition go to the dead-letter topic on their own, and the worker goes on."""
    await ensure_topics(settings)
    stack = ServiceStack(settings, tmp_path, ("matcher",))
    stack_factory.append(stack)
    await asyncio.to_thread(stack.start)
    n = settings.kafka.partitions
    talk = weeks_of_talk("ann", "ben")
    p = records_layout.partition_for(b"ann|ben", n)
    stranger = next(
        interaction(f"s{i}", "t")
        for i in range(100)
        if records_layout.partition_for(f"s{i}|t".encode(), n) != p
    )
    items = [orjson.loads(e.model_dump_json()) for e in talk]
    items.insert(2, {"source": "test", "kind": "hug"})
    items.insert(4, orjson.loads(stranger.model_dump_json()))
    producer = new_producer(settings, client_id="test")
    await producer.start()
    try:
        await producer.send_and_wait(
            Topics(settings).interactions, value=orjson.dumps(items), partition=p
        )
    finally:
        await producer.stop()
    await pipeline.drain_matcher(settings, timeout=60)

    out = await pipeline.read_suggestions(settings, idle_s=2.0)
    assert [s.pair for s in out] == [("ann", "ben")]
    assert out[0].evidence["exchanges"] == {"ann->ben": 6, "ben->ann": 6}
    dead = await read_dlq(settings, expected=2)
    by_reason = {dict(r.headers)["dlq.reason"].decode(): orjson.loads(r.value) for r in dead}
    assert by_reason == {
        "schema": {"source": "test", "kind": "hug"},
        "partition": orjson.loads(stranger.model_dump_json()),
    }
    assert stack.procs["matcher"].poll() is None
