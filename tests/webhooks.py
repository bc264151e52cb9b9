"""Signed webhook requests, the way each platform sends them (dev secrets)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from schemas.events import pair_key
from services.common import records
from services.common.kafka import Topics
from services.common.settings import Settings
from services.ingest import auth


def dev_secret(source: str) -> str:
    return f"dev-{source}-secret"


def signed_headers(
    source: str,
    body: bytes,
    *,
    secret: str | None = None,
    t: int | None = None,
    event: str = "issue_comment",
) -> dict[str, str]:
    secret = secret or dev_secret(source)
    t = int(time.time()) if t is None else t
    headers = {"content-type": "application/json"}
    if source == "slack":
        headers.update(auth.sign_slack(body, secret, t))
    elif source == "github":
        headers.update(
            {
                "X-Hub-Signature-256": auth.sign_github(body, secret),
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-GitHub-Event": event,
            }
        )
    else:
        headers["X-Realconnect-Signature"] = auth.sign(body, secret, t)
        headers["X-Realconnect-Delivery"] = str(uuid.uuid4())
    return headers


def post(base: str, source: str, obj: Any, **kw: Any) -> httpx.Response:
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return httpx.post(
        f"{base}/v1/sources/{source}/events",
        content=body,
        headers=signed_headers(source, body, **kw),
        timeout=10,
    )


async def read_topic(
    settings: Settings,
    topic: str,
    *,
    expected: int = 0,
    timeout: float = 30,
    settle: float = 1.0,
    until: Callable[[list[Any]], bool] | None = None,
) -> list[Any]:
    """Records of ``topic`` from the beginning: at least ``expected``, then ``settle`` s more
    to catch any extra (a duplicate would show up there)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",  # what readers downstream see
    )
    await consumer.start()
    out: list[Any] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    settle_until: float | None = None
    try:
        while loop.time() < deadline:
            for recs in (await consumer.getmany(timeout_ms=200)).values():
                out += recs
            if len(out) >= expected and (until is None or until(out)):
                settle_until = settle_until or loop.time() + settle
                if loop.time() >= settle_until:
                    break
    finally:
        await consumer.stop()
    return out


def unpack(recs: list[Any], partitions: int) -> list[dict[str, Any]]:
    """The interactions in ``interactions`` records of either layout, each with ``_key``: the
    record key of a single record, or, for an array, the pair key after checking that the
    pair belongs to the record's partition (so both layouts prove "keyed by pair")."""
    out: list[dict[str, Any]] = []
    for r in recs:
        value = json.loads(r.value)
        if isinstance(value, dict):
            out.append(value | {"_key": r.key.decode()})
            continue
        for item in value:
            key = pair_key(item["actor"], item["target"])
            assert records.partition_for(key.encode(), partitions) == r.partition, key
            out.append(item | {"_key": key})
    return out


async def interactions(
    settings: Settings,
    expected: int = 0,
    until: Callable[[list[dict[str, Any]]], bool] | None = None,
    **kw: Any,
) -> list[dict[str, Any]]:
    """The interactions on the topic: at least ``expected`` of them (and ``until`` true)."""
    n = settings.kafka.partitions

    def enough(got: list[Any]) -> bool:
        found = unpack(got, n)
        return len(found) >= expected and (until is None or until(found))

    recs = await read_topic(settings, Topics(settings).interactions, until=enough, **kw)
    return unpack(recs, n)
