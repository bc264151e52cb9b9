"""What every connector shares: forwarding a payload to ingest (signed, retried, never
skipped), its stored position, backoff with jitter, ``Retry-After`` and rate-limit headers,
and its metrics (Prometheus, and a status line in Redis for the console)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx
import orjson
import structlog
from prometheus_client import Counter, Gauge
from redis.asyncio import Redis

from services.common.backoff import Backoff, retry_after
from services.common.redis import Keys
from services.common.settings import Settings
from services.ingest import auth

log = structlog.get_logger("realconnect.connector")

EVENTS = Counter(
    "realconnect_connector_events",
    "Platform payloads the connector handed to ingest, by ingest's answer "
    "(accepted, duplicate: already there, ignored: authentic but not read, rejected: refused).",
    ["connector", "account", "outcome"],
)
LAG = Gauge(
    "realconnect_connector_lag_seconds",
    "How far behind the platform the connector is: now minus the time of the newest "
    "platform event it forwarded or passed over.",
    ["connector", "account"],
)
RECONNECTS = Counter(
    "realconnect_connector_reconnects",
    "Connections to the platform lost and opened again.",
    ["connector", "account"],
)
THROTTLED = Counter(
    "realconnect_connector_throttled",
    "Waits imposed by a 429, a 5xx or a rate-limit header, by who asked (platform, ingest).",
    ["connector", "account", "by"],
)

#: A refused payload is kept for the operator in a capped Redis list, newest first.
REJECTED_KEEP = 1000
#: A retry reuses its signature for this long (ingest then answers 409 if the first try was
#: stored after all); after it, the body is signed again (ingest's tolerance is 300 s).
RESIGN_AFTER_S = 120


class Fatal(Exception):
    """A configuration error no retry can fix (a refused token or signature): the process
    exits with the reason instead of retrying forever."""


Outcome = Literal["accepted", "duplicate", "ignored", "rejected"]


@dataclass
class Link:
    """One connector process's link to ingest and Redis: forward, remember, report."""

    settings: Settings
    source: str
    redis: Redis
    client: httpx.AsyncClient
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    state: str = "starting"
    counts: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0
    lag_s: float | None = None
    last_event_at: float | None = None

    def __post_init__(self) -> None:
        c = self.settings.connect
        self.account = c.account
        self.keys = Keys(self.settings)
        self._position_key = self.keys.connector(self.source, c.account)
        self._url = f"{c.ingest_url.rstrip('/')}/v1/sources/{self.source}/events"
        secrets = self.settings.source(self.source).secrets
        if not secrets:
            raise Fatal(
                f"no secret for {self.source}: set REALCONNECT_SOURCES__"
                f"{self.source.upper()}__SECRETS (the one ingest verifies)"
            )
        self._secret = secrets[0].get_secret_value()
        self._labels = (self.source, c.account)

    # -- positions ---------------------------------------------------------------------

    async def position(self, name: str) -> str | None:
        value = await self.redis.hget(self._position_key, name)
        return value.decode() if isinstance(value, bytes) else value

    async def positions(self) -> dict[str, str]:
        raw = await self.redis.hgetall(self._position_key)
        return {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()
        }

    async def save(self, **values: str | int | None) -> None:
        """Store positions (call only after ingest answered for what they cover); a None
        value removes that position."""
        gone = [k for k, v in values.items() if v is None]
        kept: dict[Any, Any] = {k: str(v) for k, v in values.items() if v is not None}
        async with self.redis.pipeline(transaction=True) as pipe:
            if kept:
                pipe.hset(self._position_key, mapping=kept)
            if gone:
                pipe.hdel(self._position_key, *gone)
            await pipe.execute()

    # -- forwarding --------------------------------------------------------------------

    async def forward(
        self, body: bytes, delivery: str, *, at: float | None = None, origin: str | None = None
    ) -> Outcome:
        """Post one platform payload to ingest and wait for its answer. 429, 5xx and a
        broken connection are retried (with ``Retry-After`` or backoff) until ingest
        answers: nothing is skipped. A payload ingest refuses (413, 415, 422) is kept in
        Redis for the operator and counted; a refused signature is fatal."""
        c = self.settings.connect
        backoff = Backoff(c.backoff_s, c.backoff_max_s)
        signed_at = 0
        headers: dict[str, str] = {}
        while True:
            now = int(time.time())
            if now - signed_at > RESIGN_AFTER_S:
                signed_at = now
                headers = {
                    "content-type": "application/json",
                    "user-agent": c.user_agent,
                    auth.SIGNATURE_HEADER: auth.sign(body, self._secret, now),
                    # header values are ASCII: an emoji reaction's name is percent-encoded
                    "x-realconnect-delivery": quote(delivery, safe=":/@._-")[:200],
                }
                if origin:  # the server whose ids the payload uses (Mastodon)
                    headers["x-realconnect-origin"] = origin
            wait: float | None
            try:
                r = await self.client.post(self._url, content=body, headers=headers)
            except httpx.HTTPError as e:
                wait = backoff.next()
                log.warning("ingest unreachable", url=self._url, error=str(e), retry_in_s=wait)
            else:
                outcome = self._outcome(r)
                if outcome is not None:
                    if outcome == "rejected":
                        await self._park(body, delivery, r)
                    self._count(outcome, at)
                    return outcome
                wait = retry_after(r.headers) or backoff.next()
                THROTTLED.labels(*self._labels, "ingest").inc()
                log.warning("ingest asked to wait", status=r.status_code, retry_in_s=wait)
            await self.sleep(wait)
            if self.stop.is_set():
                raise asyncio.CancelledError

    def _outcome(self, r: httpx.Response) -> Outcome | None:
        if r.status_code == 202:
            return "ignored" if r.json().get("status") == "ignored" else "accepted"
        if r.status_code == 409:
            return "duplicate"
        if r.status_code == 401 or r.status_code == 403:
            raise Fatal(
                f"ingest refused the connector's signature ({r.status_code}): "
                f"REALCONNECT_SOURCES__{self.source.upper()}__SECRETS must match ingest's"
            )
        if r.status_code == 404:
            raise Fatal(
                f"{self._url} answered 404: is REALCONNECT_CONNECT__INGEST_URL the ingest service?"
            )
        if r.status_code in (413, 415, 422):
            return "rejected"
        return None  # 429, 5xx, anything else: retried

    async def _park(self, body: bytes, delivery: str, r: httpx.Response) -> None:
        try:
            reason = r.json()
        except ValueError:
            reason = {"status": r.status_code, "detail": r.text[:500]}
        key = self.keys.connector_rejected(self.source, self.account)
        entry = orjson.dumps(
            {
                "delivery": delivery,
                "status": r.status_code,
                "problem": reason,
                "at": time.time(),
                "body": body.decode("utf-8", "replace"),
            }
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, entry)
            pipe.ltrim(key, 0, REJECTED_KEEP - 1)
            await pipe.execute()
        log.error(
            "ingest refused a platform payload; kept for the operator",
            delivery=delivery,
            status=r.status_code,
            key=key,
        )

    def _count(self, outcome: Outcome, at: float | None) -> None:
        EVENTS.labels(*self._labels, outcome).inc()
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if at is not None:
            self.seen(at)

    # -- reporting ---------------------------------------------------------------------

    def seen(self, at: float) -> None:
        """The platform time of the newest event handled (forwarded or passed over)."""
        self.last_event_at = at
        self.lag_s = max(0.0, time.time() - at)
        LAG.labels(*self._labels).set(self.lag_s)

    def reconnected(self) -> None:
        self.reconnects += 1
        RECONNECTS.labels(*self._labels).inc()

    def throttled(self) -> None:
        THROTTLED.labels(*self._labels, "platform").inc()

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the connector is told to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=max(0.0, seconds))

    def status(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "account": self.account,
            "state": self.state,
            "forwarded": self.counts.get("accepted", 0),
            "duplicates": self.counts.get("duplicate", 0),
            "ignored": self.counts.get("ignored", 0),
            "rejected": self.counts.get("rejected", 0),
            "reconnects": self.reconnects,
            "lag_s": None if self.lag_s is None else round(self.lag_s, 3),
            "last_event_at": self.last_event_at,
            "updated_at": time.time(),
        }

    async def publish(self) -> None:
        """Write the status line the console shows."""
        try:
            await self.redis.hset(
                self.keys.connectors, f"{self.source}:{self.account}", orjson.dumps(self.status())
            )
        except Exception as e:
            log.warning("status not written", error=str(e))

    async def report(self, every_s: float = 2.0) -> None:
        """Publish the status every ``every_s`` until stopped."""
        while not self.stop.is_set():
            await self.publish()
            await self.sleep(every_s)


async def get_json(
    link: Link,
    client: httpx.AsyncClient,
    url: str,
    *,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    pace: Any = None,
) -> tuple[Any, httpx.Response]:
    """GET a platform's JSON, as the platform asks: 429 and 5xx wait ``Retry-After`` (else
    backoff with jitter) and try again; ``pace(response)`` may return seconds to wait after
    a success (a rate-limit header saying the budget is spent). 401/403 are fatal."""
    c = link.settings.connect
    backoff = Backoff(c.backoff_s, c.backoff_max_s)
    while True:
        wait: float
        try:
            r = await client.get(url, params=params, headers=headers)
        except httpx.HTTPError as e:
            wait = backoff.next()
            log.warning("platform unreachable", url=url, error=str(e), retry_in_s=wait)
        else:
            if r.status_code in (401, 403):
                raise Fatal(f"{url} refused the connector's credentials ({r.status_code})")
            if r.status_code == 429 or r.status_code >= 500:
                wait = retry_after(r.headers) or _body_retry_after(r) or backoff.next()
                link.throttled()
                log.warning("platform asked to wait", url=url, status=r.status_code, wait_s=wait)
            elif r.status_code >= 400:
                raise Fatal(f"{url} answered {r.status_code}: {r.text[:300]}")
            else:
                after = pace(r) if pace else None
                if after:
                    link.throttled()
                    log.info("rate-limit budget spent; pausing", url=url, wait_s=after)
                    await link.sleep(after)
                return r.json(), r
        await link.sleep(wait)
        if link.stop.is_set():
            raise asyncio.CancelledError


def _body_retry_after(r: httpx.Response) -> float | None:
    """Discord puts ``retry_after`` (seconds) in a 429's JSON body."""
    try:
        value = r.json().get("retry_after")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def epoch_of(ts: Any) -> float | None:
    """A platform's ISO 8601 time (``Z`` or an offset) as epoch seconds; None when absent or
    not a time."""
    if not ts:
        return None
    try:
        return datetime.fromisoformat(str(ts).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def id_order(value: str) -> tuple[int, str]:
    """Orders numeric string ids (Mastodon, Discord snowflakes) as numbers."""
    return (len(value), value)
