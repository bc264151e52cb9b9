"""The circle stage in a real matcher worker on the real broker: interactions become
``person.activity`` records (in the matcher's transactions), the stage folds them into each
person's circle (its global table, changelogged), a circle stays at its bound whatever the
input, a suggestion carries the pair's circles (``around``), and forgetting a person
removes them from every circle."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from schemas.people import person_hash
from services import pipeline
from services.common.kafka import Topics, ensure_topics, new_producer
from services.common.settings import Settings
from services.matcher.circles import Circle
from tests.factories import conversation, interaction
from tests.integration.test_matcher_worker import produce, records
from tests.stack import ServiceStack

#: small enough to see the bound with a few hundred events (the default is 150)
K = 5


async def changelog(settings: Settings, table: str, idle_s: float = 1.5) -> dict[bytes, bytes]:
    """The latest value of each key on a matcher table's changelog (what every worker
    restores; a deleted key is left out), read ``read_committed`` from the start."""
    topic = f"{Topics(settings).app_id('matcher')}-{table}-changelog"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    out: dict[bytes, bytes] = {}
    quiet_since = time.monotonic()
    try:
        while time.monotonic() - quiet_since < idle_s:
            batch = await consumer.getmany(timeout_ms=300)
            for recs in batch.values():
                quiet_since = time.monotonic()
                for r in recs:
                    assert r.key is not None
                    if r.value is None:
                        out.pop(r.key, None)
                    else:
                        out[r.key] = r.value
    finally:
        await consumer.stop()
    return out


async def circles_now(settings: Settings, idle_s: float = 1.5) -> dict[str, Circle]:
    """The latest circle of each person on the circles table's changelog."""
    got = await changelog(settings, "circles", idle_s)
    return {k.decode(): Circle.decode(v) for k, v in got.items()}


async def wait_for(settings: Settings, check: object, timeout: float = 45.0) -> dict[str, Circle]:
    deadline = time.monotonic() + timeout
    while True:
        got = await circles_now(settings)
        if check(got):  # type: ignore[operator]
            return got
        assert time.monotonic() < deadline, f"circles never got there: {sorted(got)}"
        await asyncio.sleep(0.5)


async def test_circles_are_kept_bounded_shown_in_evidence_and_forget_people(
    settings: Settings, stack_factory: list[ServiceStack], tmp_path: Path
) -> None:
    await ensure_topics(settings)
    stack = ServiceStack(
        settings,
        tmp_path,
        ("matcher",),
        REALCONNECT_MATCHER__CIRCLE_SIZE=str(K),
        # Copenhagen-like contact over three days is below the shipped model's bar: this
        # test is about the evidence a suggestion carries, not about the bar
        REALCONNECT_MATCHER__MIN_PROBABILITY="0",
    )
    stack_factory.append(stack)
    await asyncio.to_thread(stack.start)

    # ann and ben both talk with cat; a star gets replies from 40 fans
    around = conversation("ann", "cat", per_direction=2, days=1) + conversation(
        "ben", "cat", per_direction=2, days=1
    )
    fans = [
        interaction(f"fan{i:02d}", "star", kind="reply", text="what a thoughtful piece, thank you")
        for i in range(40)
    ]
    await produce(settings, records(around + fans))
    await pipeline.drain_matcher(settings, timeout=60)

    def ready(c: dict[str, Circle]) -> bool:
        return {"ann", "ben", "cat", "star"} <= set(c) and c["star"].partners_seen == 40

    got = await wait_for(settings, ready)
    assert set(got["cat"].entries) == {"ann", "ben"}
    assert len(got["star"].entries) == K  # bounded: 40 fans, 5 kept
    assert got["star"].exchanges == 40
    assert got["fan00"].entries.keys() == {"star"}

    # the same records again (an upstream redelivery): no circle counts them twice
    await produce(settings, records(around))
    await pipeline.drain_matcher(settings, timeout=60)
    again = await circles_now(settings)
    assert again["cat"].exchanges == got["cat"].exchanges

    # ann and ben talk: their suggestion carries their circles as they were when it was
    # made (cat in common, and each other: the exchanges before the suggestion's own batch)
    talk = conversation("ann", "ben", per_direction=3, days=2)
    await produce(settings, records(talk[:2]))
    await pipeline.drain_matcher(settings, timeout=60)
    await wait_for(settings, lambda c: "ben" in c["ann"].entries and "ann" in c["ben"].entries)
    await produce(settings, records(talk[2:]))
    await pipeline.drain_matcher(settings, timeout=60)
    out = await pipeline.read_suggestions(settings, idle_s=2.0)
    assert [s.pair for s in out] == [("ann", "ben")]
    around = out[0].around
    assert around is not None and around.shared_contacts == 1
    assert around.rank == (2, 2)  # each is second to cat in the other's circle
    assert 0 < around.attention < 0.5 and around.closest == 0.5

    # cat asks to be forgotten: gone from every circle, and cat's own circle deleted
    producer = new_producer(settings, client_id="test")
    await producer.start()
    try:
        await producer.send_and_wait(
            Topics(settings).forgotten, key=person_hash("cat").encode(), value=b"{}"
        )
    finally:
        await producer.stop()

    def forgotten(c: dict[str, Circle]) -> bool:
        return "cat" not in c and "cat" not in c["ann"].entries and "cat" not in c["ben"].entries

    after = await wait_for(settings, forgotten)
    assert "ben" in after["ann"].entries  # the others stay
    assert stack.procs["matcher"].poll() is None
