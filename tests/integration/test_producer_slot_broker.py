"""ProducerSlot against the real broker (issue 21: it was tested only with stand-ins).

The fault: the broker answers a send with OUT_OF_ORDER_SEQUENCE_NUMBER, as it did to ingest's
producer after a broker restart in ``make reliability``. Here it is made deterministic by
moving the producer's next sequence number for one partition ten ahead (aiokafka's
transaction manager holds it), so the broker sees a gap and refuses the batch; the error,
and everything after it, is the real broker's and the real client's.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import OutOfOrderSequenceNumber

from services.common.kafka import NotAcknowledged, ProducerSlot, ensure_topics, new_producer
from services.common.settings import Settings
from tests.stack import PrivateKafka

ACK_S = 20.0


def skip_sequence(producer: AIOKafkaProducer, tp: TopicPartition) -> None:
    producer._txn_manager._sequence_numbers[tp] += 10  # the broker now sees a gap


async def values_in(settings: Settings, tp: TopicPartition) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        out: list[bytes] = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=2_000)).values():
                out.extend(r.value or b"" for r in records)
        return out
    finally:
        await consumer.stop()


async def send(producer: AIOKafkaProducer | ProducerSlot, tp: TopicPartition, value: bytes) -> int:
    sent = await producer.send(tp.topic, key=b"k", value=value, partition=tp.partition)
    return int((await asyncio.wait_for(sent, ACK_S)).offset)


async def test_a_plain_idempotent_producer_keeps_failing_after_the_broker_refuses_a_sequence(
    settings: Settings,
) -> None:
    """Why the slot exists: aiokafka's producer does not recover (the Java client bumps its
    epoch, KIP-360); every later send to that partition fails the same way."""
    tp = TopicPartition(f"{settings.namespace}.slot-plain-{uuid.uuid4().hex[:6]}", 0)
    await ensure_topics(settings, [tp.topic])
    producer = new_producer(settings, client_id="slot-plain")
    await producer.start()
    try:
        await send(producer, tp, b"before")
        skip_sequence(producer, tp)
        for value in (b"refused", b"after"):
            try:
                await send(producer, tp, value)
            except OutOfOrderSequenceNumber:
                continue
            raise AssertionError(f"{value!r} went through: aiokafka now recovers by itself")
    finally:
        await asyncio.wait_for(producer.stop(), ACK_S)
    assert await values_in(settings, tp) == [b"before"]


async def test_the_slot_replaces_a_refused_producer_and_later_sends_land_once(
    settings: Settings,
) -> None:
    tp = TopicPartition(f"{settings.namespace}.slot-{uuid.uuid4().hex[:6]}", 0)
    await ensure_topics(settings, [tp.topic])
    slot = ProducerSlot(lambda: new_producer(settings, client_id="slot"))
    await slot.start()
    try:
        await send(slot, tp, b"before")
        first = slot.current
        skip_sequence(first, tp)
        try:
            await send(slot, tp, b"refused")
            raise AssertionError("the broker took a batch with a sequence gap")
        except OutOfOrderSequenceNumber:
            pass  # the refused send still fails: its request answers 503 and is retried
        await asyncio.wait_for(slot.settled(), ACK_S)
        assert slot.current is not first and slot.replacements == 1
        await send(slot, tp, b"after")
        await send(slot, tp, b"and after")
    finally:
        await slot.stop()
    assert await values_in(settings, tp) == [b"before", b"after", b"and after"]


async def test_a_producer_that_knows_only_dead_brokers_is_replaced_by_one_that_bootstraps(
    tmp_path: Path, settings: Settings
) -> None:
    """aiokafka asks only the brokers named by its last metadata, never the bootstrap servers
    again (the 3-broker reliability scenario hung on it: a young cluster's metadata named one
    broker, then that broker was SIGKILLed). Here the producer bootstraps from a broker of its
    own that is then SIGKILLed; the replacement's bootstrap list also names the shared broker.
    After two writes go unacknowledged the slot starts a fresh producer, which finds the live
    broker."""
    gone = PrivateKafka(tmp_path / "gone")
    gone.start()
    topic = f"{settings.namespace}.slot-rebootstrap"
    both = settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(
                update={"bootstrap_servers": f"{gone.bootstrap},{settings.kafka.bootstrap_servers}"}
            )
        }
    )
    only_gone = gone_settings(settings, gone)
    tp = TopicPartition(topic, 0)
    try:
        for s in (settings, only_gone):
            await ensure_topics(s, [topic])
        made: list[AIOKafkaProducer] = []

        def factory() -> AIOKafkaProducer:
            # the first producer's metadata names the private broker only (aiokafka picks a
            # bootstrap server at random: this one is given just that one); the replacement
            # bootstraps from the whole list, as every producer in a deployment does
            made.append(new_producer(both if made else only_gone, client_id="slot-rb"))
            return made[-1]

        slot = ProducerSlot(factory, ack_timeout_s=3.0)
        await slot.start()
        try:
            nodes = {b.host + ":" + str(b.port) for b in slot.current.client.cluster.brokers()}
            assert nodes == {gone.bootstrap}, nodes  # it knows the private broker only
            await slot.acknowledged(send(slot, tp, b"to the private broker"))
            gone.kill()
            refused = 0
            for _ in range(2):  # two writes time out: the slot starts a fresh producer
                try:
                    await slot.acknowledged(send(slot, tp, b"lost with the broker"))
                except NotAcknowledged:
                    refused += 1
            assert refused == 2
            await asyncio.wait_for(slot.settled(), ACK_S)
            assert slot.replacements == 1
            await slot.acknowledged(send(slot, tp, b"after"))
        finally:
            await slot.stop()
    finally:
        gone.kill()
    assert await values_in(settings, tp) == [b"after"]


def gone_settings(settings: Settings, gone: PrivateKafka) -> Settings:
    return settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"bootstrap_servers": gone.bootstrap})}
    )
