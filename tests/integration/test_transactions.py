"""Transactions against the real broker: a worker whose transaction cannot commit (a successor
with the same transactional id fenced it, the failure a zombie meets) has it aborted and
counted, its futures fail, and nothing it sent is ever read committed; the count outlives
the worker in Redis, where the console reads it."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaError
from structlog.testing import capture_logs

from services.common import transactions as txns
from services.common.kafka import ensure_topics
from services.common.redis import Keys
from services.common.settings import Settings
from services.common.transactions import Transactions
from services.matcher.agents import count_abort
from tests.webhooks import read_topic


async def test_a_fenced_transaction_is_aborted_counted_and_never_read(settings: Settings) -> None:
    topic = settings.prefixed("txn.out")
    await ensure_topics(settings, [topic])
    tid = settings.prefixed("txn-test")
    aborts: list[int] = []
    first = Transactions(
        settings, transactional_id=tid, group_id="g", on_abort=lambda: aborts.append(1)
    )
    successor = Transactions(settings, transactional_id=tid, group_id="g")
    before = txns.ABORTED._value.get()
    committed_before = txns.COMMITTED._value.get()
    try:
        handed = await first.send_many(topic, 0, [(b"k", b"from-the-zombie")])
        await successor.start()  # same id: the broker fences the first producer
        await successor.send(topic, key=b"k", value=b"from-the-successor", partition=0)
        await successor.commit()
        with pytest.raises(KafkaError):
            await first.commit_soon()
        with pytest.raises(KafkaError):
            await handed[0]  # a local store never applies what was sent in it
    finally:
        for t in (first, successor):
            if t._producer_ is not None:
                await t._producer_.stop()
    assert aborts == [1]
    assert txns.ABORTED._value.get() == before + 1
    assert txns.COMMITTED._value.get() == committed_before + 1  # the successor's
    got = await read_topic(settings, topic, expected=1, settle=2.0)
    assert [r.value for r in got] == [b"from-the-successor"]


async def test_an_abort_is_counted_in_redis_for_the_console(
    settings: Settings, redis: object
) -> None:
    key = Keys(settings).stats
    count_abort(settings)
    count_abort(settings)
    assert await redis.hget(key, "transaction_aborts") == b"2"  # type: ignore[attr-defined]


async def test_an_abort_that_cannot_reach_redis_is_logged_not_raised(settings: Settings) -> None:
    gone = settings.model_copy(
        update={"redis": settings.redis.model_copy(update={"url": "redis://127.0.0.1:1/0"})}
    )
    with capture_logs() as logs:
        count_abort(gone)  # the worker is stopping anyway: this must not raise
    assert [e["event"] for e in logs] == ["transaction_abort_not_counted"]
