"""Thin faust I/O: raw delivery -> adapter -> directory look-ups -> identities ->
canonical interactions on ``interactions`` (keyed by pair), or a dead letter."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
import structlog
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter as Metric
from redis.asyncio import Redis

from schemas import topics as topic_names
from schemas.events import Interaction
from services.common import records
from services.common.batches import BatchConsumer
from services.common.dedupe import EventDedupe
from services.common.dlq import send_dead_letter
from services.common.kafka import Topics
from services.common.redis import Keys
from services.common.settings import Settings
from services.normalizer.directory import Directory
from services.normalizer.normalize import to_interactions
from services.sources import SOURCES, Meta
from services.sources.automated import is_automated

log = structlog.get_logger(__name__)
NORMALIZED = Metric(
    "realconnect_normalized_total", "Interactions produced by the normalizer.", ["source", "kind"]
)
DEAD = Metric(
    "realconnect_normalizer_dead_letters_total",
    "Raw deliveries dead-lettered.",
    ["source", "reason"],
)


def _headers(record: ConsumerRecord[bytes, bytes]) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace") for k, v in record.headers or ()}


def register(
    app: faust.App, settings: Settings, redis: Redis, directory: Directory, dedupe: EventDedupe
) -> None:
    t = Topics(settings)
    keys = Keys(settings)
    out = app.topic(t.interactions, key_serializer="raw", value_serializer="raw")
    dlq = app.topic(t.interactions_dlq, key_serializer="raw", value_serializer="raw")
    # The people API writes the compacted `people.identities`; `link` copies it into a global
    # table (every worker holds every identity). The table keeps faust's own changelog: a
    # global table whose changelog is an external topic never finishes starting in
    # faust-streaming 0.15 (it stalls before subscribing).
    people = app.topic(
        t.identities,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.kafka.partitions,
    )
    identities = app.GlobalTable(
        "identities", key_type=bytes, value_type=bytes, partitions=settings.kafka.partitions
    )
    # the table's own dict (memory store): two look-ups per interaction, and faust's
    # Mapping layers cost more than the look-up itself
    linked: Any = getattr(identities.data, "data", identities)
    prefix = t.name(topic_names.RAW_PREFIX)
    partitions = settings.kafka.partitions

    def person_of(handle: str) -> str | None:
        value = linked.get(handle.encode())
        return None if value is None else str(orjson.loads(value)["person_id"])

    dead_sent: list[Any] = []  # the current batch's dead letters, not yet acknowledged
    # the operators' list of automated accounts, read once per batch (a small set)
    listed: list[frozenset[str]] = [frozenset()]

    def automated(handle: str) -> bool:
        return is_automated(handle, listed[0])

    async def dead(
        record: ConsumerRecord[bytes, bytes], source: str, reason: str, error: str
    ) -> None:
        DEAD.labels(source, reason).inc()
        sent = await send_dead_letter(dlq, record, reason=reason, error=error, service="normalizer")
        dead_sent.append(sent)  # acknowledged before the batch is committed (`handle`)

    @app.agent(people, concurrency=1)
    async def link(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            if event.key is None:
                continue
            if event.value is None:
                identities.pop(event.key, None)  # tombstone: unlinked or deleted
            else:
                identities[event.key] = event.value
            log.info(
                "identity_updated",
                handle=event.key.decode("utf-8", "replace"),
                linked=event.value is not None,
            )

    async def extract(record: ConsumerRecord[bytes, bytes]) -> list[Interaction]:
        """One raw delivery -> its interactions (unresolved and failed ones dead-lettered)."""
        h = _headers(record)
        source = h.get("source") or record.topic.removeprefix(prefix)
        spec = SOURCES.get(source)
        if spec is None:
            await dead(record, source, "unknown_source", f"no adapter for {source!r}")
            return []
        try:
            received = datetime.fromisoformat(h["received_at"]) if "received_at" in h else None
            meta = Meta(
                delivery_id=h.get("delivery_id", ""),
                received_at=received or datetime.fromtimestamp(record.timestamp / 1000, UTC),
                event=h.get("event"),
                origin=h.get("origin"),
            )
            extraction = spec.extract(spec.payload.validate_json(record.value or b""), meta)
            refs = [d.target_ref for d in extraction.drafts if d.target is None and d.target_ref]
            resolved = await directory.resolve(source, refs)
            outcome = to_interactions(source, extraction, resolved, person_of, automated)
        except Exception as exc:
            await dead(record, source, "adapter", f"{type(exc).__name__}: {exc}")
            return []
        # learnt before the next delivery is read: a reply later in the batch resolves
        await directory.learn(source, extraction.learned)
        if outcome.invalid:
            await dead(
                record,
                source,
                "invalid_interaction",
                "; ".join(f"{d.event_id}: {error}" for d, error in outcome.invalid[:5]),
            )
        if outcome.unresolved:
            refs = sorted({d.target_ref or "" for d in outcome.unresolved})
            await dead(
                record,
                source,
                "unresolved_counterpart",
                "no handle known for " + ", ".join(refs[:20]),
            )
        log.debug(
            "delivery_normalized",
            source=source,
            interactions=len(outcome.interactions),
            ignored=extraction.ignored,
            unresolved=len(outcome.unresolved),
        )
        return outcome.interactions

    async def handle(deliveries: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Normalise a batch of deliveries: one dedupe look-up, one produce of arrays per
        partition and one dedupe marking per batch instead of per delivery. Returns once
        Kafka acknowledged every record (the batch's offsets are committed after that)."""
        found: list[Interaction] = []
        listed[0] = frozenset(
            m.decode() if isinstance(m, bytes) else m for m in await redis.smembers(keys.automated)
        )
        for record in deliveries:
            found += await extract(record)
        ids = [(i.source, i.event_id) for i in found]
        fresh = await dedupe.unseen(ids)
        new: list[Interaction] = []
        here: set[tuple[str, str]] = set()
        for i, key, is_new in zip(found, ids, fresh, strict=True):
            if is_new and key not in here:  # also the first of two copies in one batch
                new.append(i)
                here.add(key)
        futures = []
        for r in records.encode(new, partitions, settings.kafka.interactions_per_record):
            futures.append(await out.send(key=r.key, value=r.value, partition=r.partition))
        for f in futures:
            await f  # acknowledged before the dedupe marker: a crash duplicates, never loses
        while dead_sent:  # so are the dead letters, before the offsets are committed
            await dead_sent.pop()
        if new:
            async with redis.pipeline(transaction=False) as pipe:
                dedupe.mark_in(pipe, [(i.source, i.event_id) for i in new])
                pipe.hincrby(keys.stats, "interactions_in", len(new))  # console's funnel
                await pipe.execute()
        for (source, kind), count in Counter((i.source, i.kind) for i in new).items():
            NORMALIZED.labels(source, kind).inc(count)

    # Raw deliveries are read outside faust's per-message path (services.common.batches):
    # one small record per webhook delivery made that path half of this worker's CPU.
    raw = BatchConsumer(
        settings,
        t.raw_all,
        group_id=t.raw_group,
        client_id=t.app_id("normalizer"),
        handle=handle,
        max_records=settings.normalizer.batch_max,
        wait_ms=settings.normalizer.batch_wait_ms,
    )

    @app.task  # type: ignore[untyped-decorator]
    async def normalize() -> None:
        # started once the identities table is restored; a failed batch exits (70) before
        # its offsets are committed, and is read again after the restart
        await raw.run()
