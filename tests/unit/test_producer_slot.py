"""ProducerSlot: a producer whose sends fail with a fatal idempotence error is replaced.

The real broker refusing a sequence is in ``tests/integration/test_producer_slot_broker.py``
(and a broker restart in ``make reliability``); here which errors replace the producer and
which do not, with stand-in producers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber

from services.common.kafka import ProducerSlot


class StandIn:
    def __init__(self, name: str) -> None:
        self.name = name
        self.started = self.stopped = False
        self.fail_with: BaseException | None = None
        self.sent: list[bytes] = []

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, **kwargs: Any) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail_with is not None:
            fut.set_exception(self.fail_with)
        else:
            self.sent.append(kwargs["value"])
            fut.set_result(None)
        return fut


def slot_of(made: list[StandIn]) -> ProducerSlot:
    def factory() -> Any:
        made.append(StandIn(f"p{len(made)}"))
        return made[-1]

    return ProducerSlot(factory)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_fatal_error_replaces_the_producer_and_later_sends_go_through() -> None:
    made: list[StandIn] = []
    slot = slot_of(made)
    await slot.start()
    made[0].fail_with = OutOfOrderSequenceNumber()
    failed = [await slot.send("t", value=b"a"), await slot.send("t", value=b"b")]
    for fut in failed:  # the failed sends still fail: their requests answer 503
        assert isinstance(fut.exception(), OutOfOrderSequenceNumber)
    await _settle()
    assert len(made) == 2 and slot.current is made[1] and made[1].started
    assert made[0].stopped
    assert slot.replacements == 1  # two failures at once, one replacement
    await (await slot.send("t", value=b"c"))
    assert made[1].sent == [b"c"]
    await slot.stop()


async def test_an_ordinary_error_keeps_the_producer() -> None:
    made: list[StandIn] = []
    slot = slot_of(made)
    await slot.start()
    made[0].fail_with = KafkaTimeoutError()
    fut = await slot.send("t", value=b"a")
    assert isinstance(fut.exception(), KafkaTimeoutError)
    await _settle()
    assert slot.current is made[0] and len(made) == 1
    await slot.stop()
