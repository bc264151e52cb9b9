"""Outbound webhook delivery (per person, optional): signed, retried with exponential
backoff, dead-lettered to ``notifications.dlq`` when it keeps failing.

Each request carries ``X-Realconnect-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
"{t}.{body}")>`` (the scheme realconnect itself accepts) and ``X-Realconnect-Delivery: <item
id>``; delivery is at-least-once, so receivers dedupe on the delivery id. A person's secret is
derived (HMAC of the server's webhook key and the person id), so it is never stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from services.ingest.auth import sign

#: Answers that are worth another try; any other 4xx is final.
RETRYABLE_4XX = {408, 425, 429}


def secret_for(webhook_key: str, person_id: str) -> str:
    return hmac.new(
        webhook_key.encode(), f"webhook:{person_id}".encode(), hashlib.sha256
    ).hexdigest()


@dataclass(frozen=True)
class Outcome:
    ok: bool
    attempts: int
    reason: str = ""


async def _is_private(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        infos = await asyncio.to_thread(socket.getaddrinfo, host, None)
    except socket.gaierror:
        return False  # unresolvable: the request fails and is retried, then dead-lettered
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved:
            return True
    return False


async def deliver(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    *,
    secret: str,
    delivery_id: str,
    attempts: int,
    backoff_s: float,
    allow_private: bool,
) -> Outcome:
    if not allow_private and await _is_private(url):
        return Outcome(False, 0, "forbidden_target")
    delay = backoff_s
    reason = ""
    for attempt in range(1, attempts + 1):
        headers = {
            "content-type": "application/json",
            "X-Realconnect-Delivery": delivery_id,
            "X-Realconnect-Signature": sign(body, secret, int(time.time())),
        }
        try:
            r = await client.post(url, content=body, headers=headers)
            if 200 <= r.status_code < 300:
                return Outcome(True, attempt)
            reason = f"http_{r.status_code}"
            if 400 <= r.status_code < 500 and r.status_code not in RETRYABLE_4XX:
                return Outcome(False, attempt, reason)
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
        if attempt < attempts:
            await asyncio.sleep(delay)
            delay *= 2
    return Outcome(False, attempts, reason)
