"""Webhooks that cannot be aimed inward or stop the worker: bad targets are refused when
saved (422, never a 500); a job whose URL cannot be called (saved before these checks, or
written by hand) is dead-lettered and the next person's webhook still goes out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson
import pytest

from services.common.kafka import Topics, ensure_topics, new_producer
from services.common.settings import Settings
from tests.integration.test_webhooks import Receiver
from tests.people import token_for
from tests.stack import ServiceStack
from tests.webhooks import read_topic

BAD = [
    "http://[::1",
    "https://example.org:99999/hook",
    "https://" + "a" * 64 + ".example.org/",
    "https://127.0.0.1/hook",
    "https://100.100.100.200/latest/meta-data",
    "https://[fe80::1%25eth0]/",
    "https://[2002:7f00:1::]/",
    "https://user:pw@example.org/",
]


def test_bad_targets_are_refused_when_saved(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    stack = ServiceStack(settings, tmp_path, ("feeds",))
    stack_factory.append(stack)
    stack.start()
    feeds = stack.url("feeds")
    auth = token_for(feeds, "w:ann")
    for url in BAD:
        r = httpx.put(
            f"{feeds}/v1/me/preferences", json={"opted_in": True, "webhook_url": url}, headers=auth
        )
        assert r.status_code == 422, (url, r.status_code, r.text)
        assert len(r.content) < 4096


@pytest.mark.parametrize("prod", [True])
def test_prod_requires_https(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack], prod: bool
) -> None:
    secret = "a-production-secret-of-enough-length-01"
    stack = ServiceStack(
        settings,
        tmp_path,
        ("feeds",),
        REALCONNECT_ENV="prod",
        REALCONNECT_ADMIN_TOKEN=secret,
        REALCONNECT_NOTIFIER__WEBHOOK_KEY=secret,
    )
    stack_factory.append(stack)
    stack.start()
    feeds = stack.url("feeds")
    admin = {"authorization": f"Bearer {secret}"}
    token = httpx.post(f"{feeds}/v1/people/w:bob/tokens", headers=admin).json()["token"]
    r = httpx.put(
        f"{feeds}/v1/me/preferences",
        json={"opted_in": True, "webhook_url": "http://hooks.example.org/x"},
        headers={"authorization": f"Bearer {token}"},
    )
    assert r.status_code == 422 and "https" in r.text


async def test_an_uncallable_target_is_dead_lettered_and_the_worker_goes_on(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    good = Receiver(failures=0)
    try:
        await ensure_topics(settings)
        stack = ServiceStack(
            settings,
            tmp_path,
            ("notifier",),
            REALCONNECT_NOTIFIER__WEBHOOK_ALLOW_PRIVATE="true",  # the good receiver is local
        )
        stack_factory.append(stack)
        await asyncio.to_thread(stack.start)

        def job(person: str, url: str, item: str) -> bytes:
            return orjson.dumps({"person_id": person, "url": url, "item": {"item_id": item}})

        producer = new_producer(settings, client_id="test")
        await producer.start()
        try:
            topic = Topics(settings).webhooks
            for n, url in enumerate(BAD[:3]):
                await producer.send_and_wait(topic, key=b"w:x", value=job("w:x", url, f"bad{n}"))
            await producer.send_and_wait(topic, key=b"w:x", value=job("w:x", good.url, "good"))
        finally:
            await producer.stop()
        dlq = await read_topic(settings, Topics(settings).suggestions_dlq, expected=3, timeout=30)
        assert len(dlq) == 3
        assert all(dict(d.headers)["dlq.reason"] == b"webhook" for d in dlq)
        deadline = asyncio.get_running_loop().time() + 30
        while not good.requests:
            assert asyncio.get_running_loop().time() < deadline, stack.tail("notifier")
            await asyncio.sleep(0.2)
        assert stack.procs["notifier"].poll() is None  # still running
    finally:
        good.server.shutdown()
