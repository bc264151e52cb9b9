"""Malformed and oversized records written straight into every topic a worker consumes:
each is dead-lettered (or, for control topics, logged and skipped) and the worker goes on to
process what follows."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services import pipeline
from services.common import records
from services.common.kafka import Topics, ensure_topics, new_producer
from services.common.settings import Settings
from tests.factories import weeks_of_talk
from tests.stack import ServiceStack
from tests.webhooks import read_topic

#: under the broker's default 1 MiB message limit, far over anything a producer of ours writes
OVERSIZED = b'{"source": "x", "text": "' + b"A" * 900_000 + b'"}'
POISON = [b"not json", b"\xff\xfe\x00", b"[1, 2", b"{}", b"[]", b'{"until": "soon"}', OVERSIZED]


async def send_raw(settings: Settings, topic: str, values: list[bytes | None], key: bytes) -> None:
    producer = new_producer(settings, client_id="hostile")
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(topic, key=key, value=v, partition=0)
    finally:
        await producer.stop()


async def dead_letters(settings: Settings, topic: str, expected: int) -> list:
    """The dead letters on ``topic`` (at least ``expected``; see tests.webhooks.read_topic)."""
    return await read_topic(settings, topic, expected=expected, timeout=20, settle=0)


async def test_the_matcher_survives_poison_on_every_topic_it_reads(
    settings: Settings, stack_factory: list[ServiceStack], tmp_path: Path
) -> None:
    await ensure_topics(settings)
    stack = ServiceStack(settings, tmp_path, ("matcher",))
    stack_factory.append(stack)
    await asyncio.to_thread(stack.start)
    t = Topics(settings)
    for topic in (t.interactions, t.feedback, t.ticks, t.profiles, t.forgotten):
        await send_raw(settings, topic, [*POISON, None], key=b"x|y")
    # then real work: it must still be done
    talk = weeks_of_talk("ann", "ben")  # suggested under the default gate
    producer = new_producer(settings, client_id="hostile")
    await producer.start()
    try:
        for r in records.encode(talk, settings.kafka.partitions, 500):
            await producer.send_and_wait(t.interactions, value=r.value, partition=r.partition)
    finally:
        await producer.stop()
    await pipeline.drain_matcher(settings, timeout=90)
    out = await pipeline.read_suggestions(settings, idle_s=2.0)
    assert [s.pair for s in out] == [("ann", "ben")]
    assert stack.procs["matcher"].poll() is None
    # every poison interaction, feedback, tick and profile is on the dead-letter topic
    dead = await dead_letters(settings, t.interactions_dlq, expected=3 * (len(POISON) + 1))
    reasons = {
        (dict(r.headers)["dlq.topic"].decode(), dict(r.headers)["dlq.reason"].decode())
        for r in dead
    }
    assert {topic for topic, _ in reasons} == {t.interactions, t.feedback, t.ticks, t.profiles}
    assert len(dead) >= 3 * (len(POISON) + 1)


async def test_the_notifier_survives_poison_suggestions(
    settings: Settings, stack_factory: list[ServiceStack], tmp_path: Path
) -> None:
    await ensure_topics(settings)
    stack = ServiceStack(settings, tmp_path, ("notifier",))
    stack_factory.append(stack)
    await asyncio.to_thread(stack.start)
    t = Topics(settings)
    await send_raw(settings, t.suggestions, [*POISON, None], key=b"x|y")
    await send_raw(settings, t.webhooks, [*POISON, None], key=b"x")
    dead = await dead_letters(settings, t.suggestions_dlq, expected=2 * (len(POISON) + 1))
    assert len(dead) == 2 * (len(POISON) + 1)
    assert {dict(r.headers)["dlq.topic"].decode() for r in dead} == {t.suggestions, t.webhooks}
    assert stack.procs["notifier"].poll() is None
