"""``POST /v1/sources/{source}/events``: each platform's own payload, authenticated its own way.

Order of checks: 404 unknown source, 413 body over the limit, 415 not JSON, 401 signature,
429 rate limit, 422 payload invalid (with the field path), 409 delivery already received
within the replay window (nothing produced again), then the verified raw bytes go to
``interactions.raw.<source>`` and the answer is 202. 503 means Kafka did not acknowledge:
nothing was stored and the delivery may be retried with the same id.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from services.common.kafka import ProducerSlot, produce
from services.common.problems import Problem, validation_errors
from services.common.settings import Settings
from services.ingest import auth
from services.ingest.guards import Guards
from services.ingest.metrics import IGNORED, REJECTED, WEBHOOKS
from services.ingest.routes import JSON_TYPES, count_rate, media_type, read_body
from services.sources import SOURCES, Ignored, SourceName, github, slack
from services.sources.base import kind_label

#: the server a payload came from, for ids that belong to a server (Mastodon account ids);
#: the connectors send it. It is the sender's statement, as trusted as its signature.
ORIGIN_HEADER = "x-realconnect-origin"
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?")

log = structlog.get_logger(__name__)
router = APIRouter()

#: GitHub signs no timestamp, so its deliveries are remembered this long to refuse replays.
GITHUB_REPLAY_WINDOW_S = 7 * 24 * 3600


class Received(BaseModel):
    source: str
    delivery_id: str
    status: str  # "accepted" (produced) or "ignored" (valid, but not an interaction)


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, malformed, stale or wrong signature (problem+json)"},
    404: {"description": "Unknown or disabled source (problem+json)"},
    409: {"description": "Delivery already received within the replay window: no effect"},
    413: {"description": "Body over the limit (1 MiB by default) (problem+json)"},
    415: {"description": "Not application/json (problem+json)"},
    422: {"description": "Payload invalid for this source, with field paths (problem+json)"},
    429: {"description": "Over the source's rate limit; see Retry-After (problem+json)"},
    503: {"description": "Kafka did not acknowledge; retry (problem+json)"},
}


#: A Bluesky like, as Jetstream delivers it.
EXAMPLE_LIKE = {
    "did": "did:plc:wq4aajammjtxdomz3e23667t",
    "time_us": 1783175888085434,
    "kind": "commit",
    "commit": {
        "operation": "create",
        "collection": "app.bsky.feed.like",
        "rkey": "3mptbyplj5d2a",
        "record": {
            "$type": "app.bsky.feed.like",
            "createdAt": "2026-07-04T14:38:08.999Z",
            "subject": {"uri": "at://did:plc:r2zybk6op3ymzpz6jhqpkoy5/app.bsky.feed.post/3mpsj"},
        },
    },
}


def _ignored(source: str, delivery: str, kind: str) -> Received:
    """An authentic, well-formed delivery of a kind realconnect does not read: acknowledged
    (so the platform never counts a failed delivery), counted, logged, not stored."""
    IGNORED.labels(source, kind).inc()
    log.info("webhook_ignored", source=source, kind=kind, delivery_id=delivery)
    return Received(source=source, delivery_id=delivery, status="ignored")


def _reject(reason: str, status: int, title: str, detail: str, **kw: Any) -> Problem:
    REJECTED.labels(reason).inc()
    return Problem(status, title, detail, **kw)


def _authenticate(
    source: str, scheme: str, headers: dict[str, str], body: bytes, cfg: Any, settings: Settings
) -> str:
    """The delivery id, once the signature checked out under one of the source's secrets."""
    secrets = [s.get_secret_value() for s in cfg.secrets]
    tolerance = settings.ingest.signature_tolerance_s
    try:
        if scheme == "slack":
            return auth.verify_slack(headers, body, secrets, now=time.time(), tolerance=tolerance)
        if scheme == "github":
            return auth.verify_github(headers, body, secrets)
        return auth.verify_signed(headers, body, secrets, now=time.time(), tolerance=tolerance)
    except auth.AuthError as exc:
        log.warning("webhook_unauthenticated", source=source, reason=str(exc))
        raise _reject(
            "signature", 401, "Unauthenticated", str(exc), headers={"WWW-Authenticate": "Signature"}
        ) from exc


async def _claim(guards: Guards, source: str, claims: tuple[str, ...], window: int) -> list[str]:
    """Claim each of a delivery's identities for the replay window; 409 if one was taken
    (and the ones claimed before it are given back)."""
    claimed: list[str] = []
    for claim in claims:
        if not await guards.claim_delivery(source, claim, window):
            for c in claimed:
                await guards.release_delivery(source, c)
            raise _reject(
                "duplicate",
                409,
                "Duplicate delivery",
                "This delivery was already received; it had its effect once.",
            )
        claimed.append(claim)
    return claimed


async def _store(
    request: Request, source: str, delivery: str, body: bytes, extra: list[tuple[str, str]]
) -> None:
    """The delivery, unchanged, on the source's raw topic with what ingest knows of it in
    headers; 503 if Kafka did not take it."""
    record_headers = [
        ("source", source.encode()),
        ("delivery_id", delivery.encode()),
        ("received_at", datetime.now(UTC).isoformat().encode()),
        *((name, value.encode()) for name, value in extra),
    ]
    producer: ProducerSlot = request.app.state.producer
    try:
        topic = request.app.state.topics.raw(source)
        await producer.acknowledged(
            produce(producer, topic, delivery.encode(), body, headers=record_headers)
        )
    except KafkaError as exc:
        log.error("raw_produce_failed", source=source, error=str(exc))
        raise Problem(
            503,
            "Kafka unavailable",
            "The delivery was not stored; retry.",
            headers={"Retry-After": "1"},
        ) from exc


@router.post(
    "/v1/sources/{source}/events",
    status_code=202,
    response_model=Received,
    summary="Receive one webhook delivery from a social source",
    responses={200: {"description": "Slack url_verification challenge answered"}, **_ERRORS},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": "The platform's own payload (see docs/sources.md)",
                    },
                    "example": EXAMPLE_LIKE,
                }
            },
        }
    },
)
async def receive(
    request: Request,
    source: Annotated[SourceName, Path(description="The platform that sent the payload")],
) -> Any:
    settings: Settings = request.app.state.settings
    spec = SOURCES.get(source)
    cfg = settings.source(source) if spec else None
    if spec is None or cfg is None or not cfg.secrets:
        raise _reject(
            "unknown_source",
            404,
            "Unknown source",
            f"No enabled source {source!r}; known: {', '.join(SOURCES)}.",
        )
    body = await read_body(request, settings.ingest.source_max_body_bytes)
    if media_type(request) not in JSON_TYPES:
        raise _reject("content_type", 415, "Unsupported media type", "Send application/json.")

    headers = {k.lower(): v for k, v in request.headers.items()}
    delivery = _authenticate(source, spec.auth, headers, body, cfg, settings)
    origin = headers.get(ORIGIN_HEADER)
    if origin is not None and not _HOST.fullmatch(origin):
        raise _reject(
            "schema",
            422,
            "Invalid origin",
            "X-Realconnect-Origin must be the host name of the server the payload came from.",
        )
    event = headers.get("x-github-event") if source == "github" else None
    if source == "github" and event not in github.EVENTS:
        # ping, star, ...: authentic, but not something realconnect reads
        return _ignored(source, delivery, kind_label(event))
    try:
        payload = spec.payload.validate_json(body)
    except ValidationError as exc:
        raise _reject(
            "schema",
            422,
            "Invalid payload",
            f"Not a valid {source} payload.",
            errors=validation_errors(exc),
        ) from exc
    if isinstance(payload, slack.UrlVerification):
        return JSONResponse({"challenge": payload.challenge})
    if isinstance(payload, Ignored):
        return _ignored(source, delivery, payload.kind)

    guards: Guards = request.app.state.guards
    window = (
        GITHUB_REPLAY_WINDOW_S
        if spec.auth == "github"
        else 2 * settings.ingest.signature_tolerance_s
    )
    # A delivery is its signed content as well as its id: the same signed bytes under a new
    # delivery id (or with an extra v1= value) are a replay.
    content = "signed:" + auth.signed_content(spec.auth, headers, body)
    claimed = await _claim(guards, source, (delivery, content), window)
    try:
        # the rate limit after the signature and duplicate checks: refused replays never
        # drain the real platform's bucket
        wait = await guards.take_token(source, cfg.rate_per_s, cfg.burst)
        if wait > 0:
            raise _reject(
                "rate",
                429,
                "Too many requests",
                f"Over the rate limit of {source}.",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        extra = [("event", event)] if event else []
        if origin:
            extra.append(("origin", origin.lower()))
        await _store(request, source, delivery, body, extra)
    except Problem:
        for c in claimed:  # not stored: the platform's retry must be taken
            await guards.release_delivery(source, c)
        raise
    WEBHOOKS.labels(source).inc()
    await count_rate(request, {source: 1})
    return Received(source=source, delivery_id=delivery, status="accepted")
