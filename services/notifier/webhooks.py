"""Outbound webhook delivery (per person, optional): signed, one attempt at a time; the
notifier retries a failed attempt later from ``notifications.webhooks.retry`` (full-jitter
backoff, or the receiver's Retry-After) and dead-letters it to ``notifications.dlq`` when it
keeps failing, so that a dead receiver never holds up anybody else's webhooks.

Each request carries ``X-Realconnect-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
"{t}.{body}")>`` (the scheme realconnect itself accepts) and ``X-Realconnect-Delivery: <item
id>`` and ``X-Realconnect-Attempt: <1, 2, ...>``; delivery is at-least-once (a rebalance or a
restart can post an attempt again), so receivers dedupe on the delivery id. A person's secret is
derived (HMAC of the server's webhook key and the person id), so it is never stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import time
from dataclasses import dataclass

import httpx

from schemas.webhook_targets import TargetError, check_url, is_public, literal_ip
from services.common.backoff import retry_after
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
    #: worth another try later (a timeout, a refused connection, a 5xx, 408/425/429)
    retry: bool = False
    #: seconds the receiver asked to wait (its Retry-After), if it said
    retry_after: float | None = None


async def resolve(url: str, *, allow_private: bool) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL to connect to (its host replaced by the address that was checked), the Host
    header and the TLS server name to keep: the name is resolved **once**, and every address
    it gives must be public (a failed lookup is a failure, never "public"). Raises
    `TargetError` for a target that may not be called."""
    parts = check_url(url, require_https=False, allow_private=allow_private)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    ip = literal_ip(host)
    if ip is None:
        try:
            infos = await asyncio.to_thread(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise TargetError(f"{host} does not resolve") from exc
        addresses = [literal_ip(str(info[4][0]).split("%")[0]) for info in infos]
        if not addresses or any(a is None for a in addresses):
            raise TargetError(f"{host} does not resolve to an address")
        if not allow_private and not all(is_public(a) for a in addresses if a is not None):
            raise TargetError(f"{host} resolves to a non-public address")
        ip = addresses[0]
    elif not allow_private and not is_public(ip):
        raise TargetError(f"{host} is not a public address")
    assert ip is not None
    literal = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    target = parts._replace(netloc=netloc).geturl()
    host_header = f"{host}:{parts.port}" if parts.port else host
    extensions = (
        {"sni_hostname": host} if parts.scheme == "https" and literal_ip(host) is None else {}
    )
    return target, {"host": host_header}, extensions


async def attempt(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    *,
    secret: str,
    delivery_id: str,
    attempt_no: int,
    allow_private: bool,
) -> Outcome:
    """One signed POST of ``body`` to the checked address of ``url``."""
    try:
        target, host, extensions = await resolve(url, allow_private=allow_private)
    except TargetError as exc:
        return Outcome(False, attempt_no, f"forbidden_target: {exc}")
    headers = {
        "content-type": "application/json",
        "X-Realconnect-Delivery": delivery_id,
        "X-Realconnect-Attempt": str(attempt_no),
        "X-Realconnect-Signature": sign(body, secret, int(time.time())),
        **host,
    }
    try:
        # to the checked address, never the name again (DNS rebinding)
        r = await client.post(target, content=body, headers=headers, extensions=extensions)
    except httpx.HTTPError as exc:
        return Outcome(False, attempt_no, type(exc).__name__, retry=True)
    if 200 <= r.status_code < 300:
        return Outcome(True, attempt_no)
    final = 400 <= r.status_code < 500 and r.status_code not in RETRYABLE_4XX
    return Outcome(
        False,
        attempt_no,
        f"http_{r.status_code}",
        retry=not final,
        retry_after=retry_after(r.headers),
    )
