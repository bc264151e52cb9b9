"""A worker its group assigns nothing, while its input waits, must not stay idle for good.

faust starts a worker's timers only once table recovery is complete, which a worker that was
never assigned anything never reaches: after a broker restart faust's assignor left a
matcher exactly so (fixed at its cause, ``faust_fixes`` fix 4), and the stall watchdog,
a timer, never ran. ``IdleWatch`` (services/common/worker.py) starts with the app: it must
see the group's input waiting with no progress and exit 70, so that the orchestrator starts
the worker again. The worker here runs with an assignor that assigns nobody anything
(``tests/integration/assigned_nothing.py``)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from aiokafka import TopicPartition

from services.common.kafka import LagProbe, Topics, ensure_topics, new_producer
from services.common.settings import Settings
from tests.integration.test_matcher_crash import history, send_all
from tests.stack import ServiceStack

ROOT = Path(__file__).resolve().parents[2]


async def test_the_group_position_of_waiting_input_is_read_from_kafka(settings: Settings) -> None:
    """``LagProbe.waiting``: the partitions with records the group has not committed, each at
    the group's committed offset, or at the partition's start where it never committed."""
    await ensure_topics(settings)
    topic = Topics(settings).interactions
    group = f"probe-{settings.namespace}"
    producer = new_producer(settings, client_id="test")
    await producer.start()
    try:
        for partition, n in ((0, 5), (1, 2)):
            for i in range(n):
                await producer.send_and_wait(
                    topic, b"{}", key=f"k{i}".encode(), partition=partition
                )
    finally:
        await producer.stop()
    async with LagProbe(settings.kafka.bootstrap_servers) as probe:
        assert await probe.waiting({topic}, group) == {
            TopicPartition(topic, 0): 0,
            TopicPartition(topic, 1): 0,
        }
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka.bootstrap_servers,
            group_id=group,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
            await consumer.commit({TopicPartition(topic, 0): 3, TopicPartition(topic, 1): 2})
        finally:
            await consumer.stop()
        # partition 0: two records after offset 3; partition 1: all committed
        assert await probe.waiting({topic}, group) == {TopicPartition(topic, 0): 3}


async def test_a_worker_assigned_nothing_while_its_input_waits_exits_to_be_restarted(
    settings: Settings, tmp_path: Path
) -> None:
    await ensure_topics(settings)
    producer = new_producer(settings, client_id="test")
    await producer.start()
    try:
        await send_all(producer, settings, history(3))
    finally:
        await producer.stop()
    env = ServiceStack(settings, tmp_path, ("matcher",), REALCONNECT_KAFKA__STALL_TIMEOUT_S="5").env
    log = tmp_path / "matcher.log"
    started = time.monotonic()
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.integration.assigned_nothing",
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = await asyncio.wait_for(proc.wait(), timeout=120)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    text = log.read_text(errors="replace")
    assert code == 70, text[-3000:]
    assert '"idle_while_input_waits"' in text and '"exiting": 70' in text, text[-3000:]
    # it waited twice the stall timeout (10 s) of no progress first, not less
    assert time.monotonic() - started >= 10
