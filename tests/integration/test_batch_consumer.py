"""BatchConsumer against the real broker: offsets are committed only after the handler
returned, a failing handler exits the process before any commit, and a second member
joining mid-stream shares the partitions without losing a record."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

from aiokafka.structs import ConsumerRecord

from services.common.batches import BatchConsumer
from services.common.kafka import LagProbe, ensure_topics, new_producer
from services.common.settings import Settings

Seen = set[tuple[int, int]]


async def fill(settings: Settings, topic: str, n: int) -> None:
    await ensure_topics(settings, [topic])
    producer = new_producer(settings, client_id="test-fill")
    await producer.start()
    try:
        sent = [
            await producer.send(topic, key=f"k{i}".encode(), value=f"{i}".encode())
            for i in range(n)
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def committed(settings: Settings, topic: str, group: str) -> tuple[int, int]:
    async with LagProbe(settings.kafka.bootstrap_servers) as probe:
        lag = await probe.lag(topic, group)
    return sum(lag.committed.get(p, 0) for p in lag.end), sum(lag.end.values())


def consumer(settings: Settings, topic: str, group: str, handle: object) -> BatchConsumer:
    return BatchConsumer(
        settings,
        [topic],
        group_id=group,
        client_id="test",
        handle=handle,  # type: ignore[arg-type]
        max_records=50,
        wait_ms=20,
    )


async def test_offsets_are_committed_only_after_the_handler_returned(settings: Settings) -> None:
    topic, group = settings.prefixed("batches.a"), settings.prefixed("batches-a")
    await fill(settings, topic, 30)
    release, handed = asyncio.Event(), asyncio.Event()
    seen: Seen = set()

    async def handle(records: list[ConsumerRecord[bytes, bytes]]) -> None:
        seen.update((r.partition, r.offset) for r in records)
        handed.set()
        await release.wait()

    c = consumer(settings, topic, group, handle)
    task = asyncio.create_task(c.run())
    try:
        await asyncio.wait_for(handed.wait(), 30)
        deadline = time.monotonic() + 30
        await asyncio.sleep(1.0)
        assert (await committed(settings, topic, group))[0] == 0  # held by the handler
        release.set()
        while time.monotonic() < deadline:
            done, end = await committed(settings, topic, group)
            if done == end == 30:
                break
            await asyncio.sleep(0.1)
        assert await committed(settings, topic, group) == (30, 30)
        assert len(seen) == 30
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


FAILING = """
import asyncio, sys
from services.common.batches import BatchConsumer
from services.common.settings import Settings

async def handle(records):
    raise ConnectionError("redis went away mid-batch")

async def main():
    s = Settings(namespace=sys.argv[1], env="test")
    await BatchConsumer(s, [sys.argv[2]], group_id=sys.argv[3], client_id="t", handle=handle,
                        max_records=10, wait_ms=10).run()

asyncio.run(main())
"""


async def test_a_failing_handler_exits_70_before_any_commit(settings: Settings) -> None:
    topic, group = settings.prefixed("batches.b"), settings.prefixed("batches-b")
    await fill(settings, topic, 5)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        FAILING,
        settings.namespace,
        topic,
        group,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    err, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 70, err.decode()[-2000:]
    assert b"batch_consumer_failed" in err
    assert await committed(settings, topic, group) == (0, 5)  # read again after a restart


async def test_a_member_joining_mid_stream_shares_the_partitions_and_nothing_is_lost(
    settings: Settings,
) -> None:
    topic, group = settings.prefixed("batches.c"), settings.prefixed("batches-c")
    n = 3000
    await fill(settings, topic, n)
    handled: dict[str, Seen] = {"first": set(), "second": set()}

    def handler(name: str) -> object:
        async def handle(records: list[ConsumerRecord[bytes, bytes]]) -> None:
            await asyncio.sleep(0.2)  # slow enough for the rebalance to happen mid-stream
            handled[name].update((r.partition, r.offset) for r in records)

        return handle

    first = asyncio.create_task(consumer(settings, topic, group, handler("first")).run())
    second: asyncio.Task[None] | None = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if second is None and len(handled["first"]) >= 200:
                second = asyncio.create_task(
                    consumer(settings, topic, group, handler("second")).run()
                )
            if (await committed(settings, topic, group)) == (n, n):
                break
            await asyncio.sleep(0.2)
        assert await committed(settings, topic, group) == (n, n)
        assert second is not None and handled["second"], "the second member never got a share"
        assert len(handled["first"] | handled["second"]) == n  # every record handled
    finally:
        for task in (first, second):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (first, second) if t), return_exceptions=True)
