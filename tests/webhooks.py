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


async def interactions(settings: Settings, expected: int = 0, **kw: Any) -> list[dict[str, Any]]:
    recs = await read_topic(settings, Topics(settings).interactions, expected=expected, **kw)

    return [json.loads(r.value) | {"_key": r.key.decode()} for r in recs]
