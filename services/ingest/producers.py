"""Trusted producers: the bearer tokens that ``POST /v1/interactions`` and ``:batch`` require.

Canonical interactions name any two people, so only a trusted producer (a connector, an
import job, the replay client) may post them: anyone else could invent exchanges between
their own id and a victim's and make the service tell them to meet.

- An admin issues a token (``POST /v1/producers``): it is shown once; only its SHA-256 is
  stored (Redis hash ``producers``), with the producer's id, name, scope and expiry.
- ``DELETE /v1/producers/{id}`` revokes it; ``GET /v1/producers`` lists them (never a token).
- Each ingest process remembers a token's verdict for ``PRODUCER_CACHE_S`` seconds (a
  revocation takes effect within that), and rate-limits each producer with a token bucket
  of its own (``INGEST__PRODUCER_RATE_PER_S`` requests per second, per process).
- Outside prod, ``dev-producer-token`` is accepted (like the other ``dev-*`` secrets); in
  prod it is refused like any unknown token.

Losing Redis loses the issued tokens: producers are then refused (fail closed) until an admin
issues new ones.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError

from services.common.admin import admin
from services.common.problems import Problem

DEV_TOKEN: Final = "dev-producer-token"  # noqa: S105 - the documented dev token, refused in prod
#: how long a process trusts its last look-up of a token (revocations take this long)
PRODUCER_CACHE_S: Final = 5.0
#: the only scope so far: posting canonical interactions
SCOPE: Final = "produce"

router = APIRouter(
    dependencies=[Depends(admin("producers"))],
    responses={401: {"description": "Missing or wrong admin token (problem+json)"}},
)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ProducerIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w .:@/-]+$")]
    #: days until the token stops working (none: until revoked)
    expires_days: Annotated[int, Field(ge=1, le=3650)] | None = None


class Producer(BaseModel):
    id: str
    name: str
    scope: str
    created_at: str
    expires_at: str | None


class IssuedProducer(Producer):
    #: shown once: only its SHA-256 is stored
    token: str


class Bucket:
    """A token bucket per producer, in this process."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._state: dict[str, tuple[float, float]] = {}

    def take(self, who: str) -> float:
        """0 if a request may go ahead now, else the seconds until it may."""
        now = time.monotonic()
        tokens, at = self._state.get(who, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1:
            self._state[who] = (tokens - 1, now)
            return 0.0
        self._state[who] = (tokens, now)
        return (1 - tokens) / self.rate


class ProducerAuth:
    """Checks ``Authorization: Bearer <token>`` on the producer routes."""

    def __init__(self, redis: Any, key: str, *, allow_dev: bool, rate: float, burst: float):
        self._redis, self._key, self._allow_dev = redis, key, allow_dev
        self._seen: dict[str, tuple[float, str | None]] = {}  # hash -> (until, producer id)
        self.bucket = Bucket(rate, burst)

    async def producer(self, request: Request) -> str:
        """The producer's id; 401 for a missing, unknown, revoked or expired token, 429
        over the producer's rate, 503 if the tokens cannot be read."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 256:
            raise _unauthenticated("A producer bearer token is required.")
        if self._allow_dev and hmac.compare_digest(token.encode(), DEV_TOKEN.encode()):
            who: str | None = "dev"
        else:
            who = await self._lookup(token_hash(token))
        if who is None:
            raise _unauthenticated("The producer token is not valid (unknown, revoked or expired).")
        wait = self.bucket.take(who)
        if wait > 0:
            raise Problem(
                429,
                "Too many requests",
                "This producer is over its rate limit.",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        return who

    async def _lookup(self, hashed: str) -> str | None:
        now = time.monotonic()
        hit = self._seen.get(hashed)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            raw = await self._redis.hget(self._key, hashed)
        except RedisError as exc:
            raise Problem(
                503,
                "Unavailable",
                "Tokens cannot be checked now; retry.",
                headers={"Retry-After": "1"},
            ) from exc
        who = None
        if raw is not None:
            record = orjson.loads(raw)
            expires = record.get("expires_at")
            if expires is None or datetime.fromisoformat(expires) > datetime.now(UTC):
                who = str(record["id"])
        if len(self._seen) > 10_000:  # bounded: guessed tokens cannot grow it
            self._seen.clear()
        self._seen[hashed] = (now + PRODUCER_CACHE_S, who)
        return who


def _unauthenticated(detail: str) -> Problem:
    return Problem(401, "Unauthenticated", detail, headers={"WWW-Authenticate": "Bearer"})


@router.post("/v1/producers", status_code=201, response_model=IssuedProducer, tags=["admin"])
async def issue(request: Request, body: ProducerIn) -> IssuedProducer:
    """Issue a producer token (shown once; only its SHA-256 is kept)."""
    token = "rcp_" + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    expires = now + timedelta(days=body.expires_days) if body.expires_days else None
    record = Producer(
        id=secrets.token_hex(8),
        name=body.name,
        scope=SCOPE,
        created_at=now.isoformat(timespec="seconds"),
        expires_at=expires.isoformat(timespec="seconds") if expires else None,
    )
    keys = request.app.state.keys
    async with request.app.state.redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.producers, token_hash(token), record.model_dump_json())
        pipe.hset(keys.producer_ids, record.id, token_hash(token))
        await pipe.execute()
    return IssuedProducer(**record.model_dump(), token=token)


@router.get("/v1/producers", response_model=list[Producer], tags=["admin"])
async def list_producers(request: Request) -> list[Producer]:
    raw = await request.app.state.redis.hvals(request.app.state.keys.producers)
    return sorted((Producer.model_validate_json(r) for r in raw), key=lambda p: p.created_at)


@router.delete(
    "/v1/producers/{producer_id}",
    status_code=204,
    tags=["admin"],
    responses={404: {"description": "No such producer (problem+json)"}},
)
async def revoke(
    request: Request,
    producer_id: Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$")],
) -> Response:
    keys = request.app.state.keys
    hashed = await request.app.state.redis.hget(keys.producer_ids, producer_id)
    if hashed is None:
        raise Problem(404, "Not found", "No such producer.")
    async with request.app.state.redis.pipeline(transaction=True) as pipe:
        pipe.hdel(keys.producers, hashed)
        pipe.hdel(keys.producer_ids, producer_id)
        await pipe.execute()
    return Response(status_code=204)
