"""HTTP routes: validate at the edge, produce keyed by the unordered pair, answer 202."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import orjson
import structlog
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError

from schemas.events import INTERACTION_ADAPTER, INTERACTION_LIST_ADAPTER, Interaction
from services.common.body_limit import read_bounded
from services.common.dedupe import EventDedupe
from services.common.kafka import ProducerSlot, produce_interactions
from services.common.problems import Problem, validation_errors
from services.ingest.accepted import AcceptedLog, count_rate_in
from services.ingest.metrics import INGESTED, REJECTED

log = structlog.get_logger(__name__)
router = APIRouter()

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")


class Accepted(BaseModel):
    accepted: int
    event_ids: list[str]
    #: events whose (source, event_id) was already produced within the dedupe window:
    #: acknowledged, not produced again
    duplicates: int = 0


_EXAMPLE = {
    "source": "mastodon",
    "event_id": "109876543210",
    "kind": "reply",
    "actor": "alice",
    "target": "bob",
    "occurred_at": "2026-03-01T09:30:00+00:00",
    "text": "How did the talk go?",
    "duration_s": None,
    "thread_id": "t-1",
    "in_reply_to": "109876543200",
}


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid producer bearer token (problem+json)"},
    429: {"description": "The producer is over its rate limit; see Retry-After (problem+json)"},
    413: {"description": "Body or batch over the limit (problem+json)"},
    415: {"description": "Wrong content type (problem+json)"},
    422: {"description": "Invalid interaction: field-level errors with their paths (problem+json)"},
    503: {"description": "Kafka did not acknowledge: nothing was stored, retry (problem+json)"},
}


def _body_doc(
    media: str, schema: dict[str, Any], example: Any, *, ndjson: bool = False
) -> dict[str, Any]:
    content: dict[str, Any] = {media: {"schema": schema, "example": example}}
    if ndjson:
        content["application/x-ndjson"] = {"schema": {"type": "string"}}
    return {
        "requestBody": {"required": True, "content": content},
        # a trusted producer's token (services/ingest/producers.py), not the admin token
        "security": [{"ProducerToken": []}],
    }


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_body(request: Request, limit: int | None = None) -> bytes:
    """The raw body, refused with 413 as soon as it is over ``limit`` bytes (counted)."""
    if limit is None:
        limit = request.app.state.settings.ingest.max_body_bytes
    try:
        return await read_bounded(request, limit)
    except Problem:
        REJECTED.labels("size").inc()
        raise


async def count_rate(request: Request, per_source: Mapping[str, int]) -> None:
    async with request.app.state.redis.pipeline(transaction=False) as pipe:
        count_rate_in(pipe, request.app.state.keys, per_source)
        await pipe.execute()


async def _produce(request: Request, interactions: list[Interaction]) -> int:
    """Send every interaction not seen within the dedupe window; wait until Kafka has
    acknowledged all of them. Returns how many were duplicates."""
    producer: ProducerSlot = request.app.state.producer
    topic: str = request.app.state.topics.interactions
    dedupe: EventDedupe = request.app.state.dedupe
    ids = [(i.source, i.event_id) for i in interactions]
    # within one request, too, the first occurrence of an id wins
    fresh = await dedupe.unseen(ids)
    kept_ids: dict[tuple[str, str], None] = {}  # in order, each once
    keep = []
    for i, key, is_new in zip(interactions, ids, fresh, strict=True):
        if is_new and key not in kept_ids:
            keep.append(i)
            kept_ids[key] = None
    duplicates = len(interactions) - len(keep)
    interactions = keep
    try:
        per_record = request.app.state.settings.kafka.interactions_per_record
        await producer.acknowledged(produce_interactions(producer, topic, interactions, per_record))
    except KafkaError as exc:
        # Not acknowledged = not accepted: the client retries, and the matcher absorbs any
        # duplicate of an event that did get through (same source and event_id).
        log.error("produce_failed", error=str(exc), events=len(interactions))
        raise Problem(
            503,
            "Kafka unavailable",
            "The events were not stored; retry.",
            headers={"Retry-After": "1"},
        ) from exc
    # the dedupe markers (after the ack) and the console's counts: one round trip, shared
    # with the other requests in flight
    accepted: AcceptedLog = request.app.state.accepted
    await accepted.record(list(kept_ids))
    for (source, kind), count in Counter((i.source, i.kind) for i in interactions).items():
        INGESTED.labels(source, kind).inc(count)
    if duplicates:
        REJECTED.labels("duplicate").inc(duplicates)
    return duplicates


@router.post(
    "/v1/interactions",
    status_code=202,
    response_model=Accepted,
    summary="Ingest one canonical interaction",
    responses=_ERRORS,
    # The body is read raw (size limit first, then one validate_json); documented here.
    openapi_extra=_body_doc(
        "application/json", {"$ref": "#/components/schemas/Interaction"}, _EXAMPLE
    ),
)
async def ingest_one(request: Request) -> Accepted:
    await request.app.state.producer_auth.producer(request)  # 401 / 429 before any parsing
    if media_type(request) not in JSON_TYPES:
        REJECTED.labels("content_type").inc()
        raise Problem(415, "Unsupported media type", "Send application/json.")
    body = await read_body(request)
    try:
        parsed = INTERACTION_ADAPTER.validate_json(body)
    except ValidationError as exc:
        REJECTED.labels("schema").inc()
        raise _invalid("Invalid interaction", "The interaction failed validation.", exc) from exc
    duplicates = await _produce(request, [parsed])
    return Accepted(accepted=1, event_ids=[parsed.event_id], duplicates=duplicates)


@router.post(
    "/v1/interactions:batch",
    status_code=202,
    response_model=Accepted,
    summary="Ingest up to 5,000 interactions (JSON array or NDJSON)",
    description=(
        "All or nothing: if any event is invalid, none is produced and the 422 lists every "
        "invalid event by index. 202 means Kafka acknowledged every event."
    ),
    responses=_ERRORS,
    openapi_extra=_body_doc(
        "application/json",
        {"type": "array", "items": {"$ref": "#/components/schemas/Interaction"}, "maxItems": 5000},
        [_EXAMPLE],
        ndjson=True,
    ),
)
async def ingest_batch(request: Request) -> Accepted:
    await request.app.state.producer_auth.producer(request)  # 401 / 429 before any parsing
    media = media_type(request)
    if media not in JSON_TYPES and media not in NDJSON_TYPES:
        REJECTED.labels("content_type").inc()
        raise Problem(
            415, "Unsupported media type", "Send application/json or application/x-ndjson."
        )
    body = await read_body(request)
    limit: int = request.app.state.settings.ingest.max_batch_events
    try:
        parse = _parse_array if media in JSON_TYPES else _parse_ndjson
        events = parse(body, limit)
    except ValidationError as exc:
        REJECTED.labels("schema").inc()
        raise _invalid(
            "Invalid interactions", "No event was accepted: fix these and resend.", exc
        ) from exc
    duplicates = await _produce(request, events)
    return Accepted(
        accepted=len(events), event_ids=[e.event_id for e in events], duplicates=duplicates
    )


#: errors listed in a 422 at most (the rest are counted): a small bad request never gets a
#: large answer
MAX_ERRORS = 100


def _invalid(title: str, detail: str, exc: ValidationError) -> Problem:
    return _capped(title, detail, validation_errors(exc))


def _capped(title: str, detail: str, errors: list[dict[str, Any]]) -> Problem:
    shown = errors[:MAX_ERRORS]
    more = (
        f" The first {MAX_ERRORS} of {len(errors)} errors are listed."
        if len(errors) > MAX_ERRORS
        else ""
    )
    return Problem(422, title, detail + more, errors=shown)


def _too_many(limit: int, got: str) -> Problem:
    REJECTED.labels("batch_size").inc()
    return Problem(413, "Batch too large", f"At most {limit} events per batch; got {got}.")


def _parse_array(body: bytes, limit: int) -> list[Interaction]:
    """A JSON array of interactions: its length is checked (by orjson, in C) before any
    element is validated, so an oversized batch costs no validation and no errors."""
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _capped(
            "Invalid interactions",
            "The body is not JSON.",
            [{"loc": [], "pointer": "/", "msg": str(exc)[:200], "type": "json_invalid"}],
        ) from exc
    if not isinstance(items, list):
        raise _capped(
            "Invalid interactions",
            "Send a JSON array of interactions.",
            [
                {
                    "loc": [],
                    "pointer": "/",
                    "msg": "Input should be a valid list",
                    "type": "list_type",
                }
            ],
        )
    if len(items) > limit:
        # the documented schema's maxItems: a validation error (422), as for any other
        # schema violation of the array; NDJSON, which has no schema, gets 413
        REJECTED.labels("batch_size").inc()
        raise _capped(
            "Invalid interactions",
            f"At most {limit} events per batch; got {len(items)}.",
            [{"loc": [], "pointer": "/", "msg": f"at most {limit} items", "type": "too_long"}],
        )
    del items
    # validated from the bytes (the schema's strict fields read JSON, not Python objects)
    return INTERACTION_LIST_ADAPTER.validate_json(body)


def _parse_ndjson(body: bytes, limit: int) -> list[Interaction]:
    """One interaction per non-empty line; every bad line is reported with its index. The
    lines are counted before any is parsed."""
    lines = [(n, line) for n, line in enumerate(body.splitlines()) if line.strip()]
    if len(lines) > limit:
        raise _too_many(limit, f"{len(lines)} lines")
    out: list[Interaction] = []
    errors: list[dict[str, Any]] = []
    for n, line in lines:
        try:
            out.append(INTERACTION_ADAPTER.validate_json(line))
        except ValidationError as exc:
            errors += validation_errors(exc, prefix=(n,))
    if errors:
        raise _capped(
            "Invalid interactions", "No event was accepted: fix these and resend.", errors
        )
    return out


@router.get("/healthz", summary="Liveness and Kafka connectivity")
async def healthz(request: Request) -> dict[str, Any]:
    producer: ProducerSlot = request.app.state.producer
    ok = bool(producer.client.cluster.brokers())
    return {"status": "ok" if ok else "degraded", "kafka": ok}


#: served by ``services.common.direct.DirectRoutes`` (same endpoints, shorter dispatch)
DIRECT: dict[tuple[str, str], tuple[Any, int]] = {
    ("POST", "/v1/interactions"): (ingest_one, 202),
    ("POST", "/v1/interactions:batch"): (ingest_batch, 202),
}
