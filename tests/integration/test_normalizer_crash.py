"""SIGKILL the normalizer mid-stream: after a restart every raw delivery has become its
interaction on ``interactions`` (a delivery produced but not yet committed may appear twice,
which the matcher absorbs; none may be missing), and the raw group has committed them all."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common import records
from services.common.kafka import LagProbe, Topics, ensure_topics, new_producer
from services.common.settings import Settings
from services.pipeline import wait_caught_up
from tests.factories import interaction
from tests.stack import ServiceStack

START = datetime(2026, 3, 2, 9, tzinfo=UTC)
HEADERS = [("source", b"generic"), ("received_at", b"2026-03-02T09:00:00+00:00")]


async def interactions_on_kafka(settings: Settings) -> Counter[str]:
    """event_id -> how many times it is on ``interactions``."""
    topic = Topics(settings).interactions
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.kafka.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        seen: Counter[str] = Counter()
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for recs in (await consumer.getmany(timeout_ms=1000)).values():
                for r in recs:
                    seen.update(i.event_id for i in records.decode(r.value).interactions)
        return seen
    finally:
        await consumer.stop()


async def test_a_killed_normalizer_loses_no_delivery(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    n = 20_000
    await ensure_topics(settings)
    t = Topics(settings)
    producer = new_producer(settings, client_id="test")
    await producer.start()
    try:
        sent = []
        for i in range(n):
            e = interaction(
                f"n:a{i % 700}",
                f"n:b{i % 900}",
                kind="reply",
                source="generic",
                event_id=f"crash-{i}",
                at=START + timedelta(seconds=i),
            )
            sent.append(
                await producer.send(
                    t.raw("generic"),
                    key=e.event_id.encode(),
                    value=e.model_dump_json().encode(),
                    headers=HEADERS,
                )
            )
        await asyncio.gather(*sent)
    finally:
        await producer.stop()

    stack = ServiceStack(
        settings,
        tmp_path,
        ("normalizer",),
        REALCONNECT_NORMALIZER__BATCH_MAX="500",
    )
    stack_factory.append(stack)
    await asyncio.to_thread(stack.start)
    done = 0
    async with LagProbe(settings.kafka.bootstrap_servers) as probe:
        for _ in range(2000):  # kill while it is part-way through (committed offsets)
            lag = await probe.lag(t.raw("generic"), t.raw_group)
            done = sum(lag.committed.values())
            if done >= 2000:
                break
            await asyncio.sleep(0.02)
    stack.kill("normalizer", signal.SIGKILL)
    assert 0 < done < n, f"the kill did not land mid-stream ({done} committed)"
    await asyncio.to_thread(stack.start_one, "normalizer")
    await asyncio.to_thread(stack.wait_ready, "normalizer")
    await wait_caught_up(
        settings, t.raw("generic"), t.raw_group, asyncio.get_running_loop().time() + 180, 0.3
    )
    seen = await interactions_on_kafka(settings)
    assert set(seen) == {f"crash-{i}" for i in range(n)}
    duplicated = sum(c - 1 for c in seen.values())
    assert duplicated <= 500, f"{duplicated} duplicates: more than the batch in flight"
