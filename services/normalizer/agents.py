"""Thin faust I/O: raw delivery -> adapter -> directory look-ups -> identities ->
canonical interactions on ``interactions`` (keyed by pair), or a dead letter."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
import structlog
from prometheus_client import Counter as Metric
from redis.asyncio import Redis

from schemas import topics as topic_names
from schemas.events import Interaction
from services.common import records
from services.common.dedupe import EventDedupe
from services.common.dlq import send_dead_letter
from services.common.kafka import Topics
from services.common.redis import Keys
from services.common.settings import Settings
from services.ingest.sources import SOURCES, Meta
from services.normalizer.directory import Directory
from services.normalizer.normalize import to_interactions

log = structlog.get_logger(__name__)
NORMALIZED = Metric(
    "realconnect_normalized_total", "Interactions produced by the normalizer.", ["source", "kind"]
)
DEAD = Metric(
    "realconnect_normalizer_dead_letters_total",
    "Raw deliveries dead-lettered.",
    ["source", "reason"],
)


def _headers(event: faust.EventT[Any]) -> dict[str, str]:
    raw: Any = event.message.headers or []
    pairs: list[tuple[str, Any]] = list(raw.items()) if isinstance(raw, dict) else list(raw)
    return {k: v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for k, v in pairs}


def register(
    app: faust.App, settings: Settings, redis: Redis, directory: Directory, dedupe: EventDedupe
) -> None:
    t = Topics(settings)
    keys = Keys(settings)
    raw = app.topic(*t.raw_all, key_serializer="raw", value_serializer="raw")
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

    async def dead(event: faust.EventT[Any], source: str, reason: str, error: str) -> None:
        DEAD.labels(source, reason).inc()
        await send_dead_letter(dlq, event, reason=reason, error=error, service="normalizer")

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

    async def extract(event: faust.EventT[Any]) -> list[Interaction]:
        """One raw delivery -> its interactions (unresolved and failed ones dead-lettered)."""
        h = _headers(event)
        source = h.get("source") or event.message.topic.removeprefix(prefix)
        spec = SOURCES.get(source)
        if spec is None:
            await dead(event, source, "unknown_source", f"no adapter for {source!r}")
            return []
        try:
            received = datetime.fromisoformat(h["received_at"]) if "received_at" in h else None
            meta = Meta(
                delivery_id=h.get("delivery_id", ""),
                received_at=received or datetime.fromtimestamp(event.message.timestamp, UTC),
                event=h.get("event"),
            )
            extraction = spec.extract(spec.payload.validate_json(event.value), meta)
            refs = [d.target_ref for d in extraction.drafts if d.target is None and d.target_ref]
            resolved = await directory.resolve(source, refs)
            outcome = to_interactions(source, extraction, resolved, person_of)
        except Exception as exc:
            await dead(event, source, "adapter", f"{type(exc).__name__}: {exc}")
            return []
        # learnt before the next delivery is read: a reply later in the batch resolves
        await directory.learn(source, extraction.learned)
        if outcome.invalid:
            await dead(
                event,
                source,
                "invalid_interaction",
                "; ".join(f"{d.event_id}: {error}" for d, error in outcome.invalid[:5]),
            )
        if outcome.unresolved:
            refs = sorted({d.target_ref or "" for d in outcome.unresolved})
            await dead(
                event,
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

    async def handle(events: list[faust.EventT[Any]]) -> None:
        """Normalise a batch of deliveries: one dedupe look-up, one produce of arrays per
        partition and one dedupe marking per batch instead of per delivery."""
        found: list[Interaction] = []
        for event in events:
            found += await extract(event)
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
        if new:
            async with redis.pipeline(transaction=False) as pipe:
                dedupe.mark_in(pipe, [(i.source, i.event_id) for i in new])
                pipe.hincrby(keys.stats, "interactions_in", len(new))  # console's funnel
                await pipe.execute()
        for (source, kind), count in Counter((i.source, i.kind) for i in new).items():
            NORMALIZED.labels(source, kind).inc(count)

    @app.agent(raw, concurrency=1)
    async def normalize(stream: faust.StreamT[bytes]) -> None:
        # Batches are formed from what the stream has buffered: a batch is closed when it is
        # full, or when nothing more has arrived `batch_wait_ms` after its first delivery.
        # (faust's `take_events` does the same at several tasks and futures per event.)
        # Acks are manual, after the batch is handled: faust commits only what was produced.
        manual = stream.noack()  # type: ignore[attr-defined]
        waiting = stream.channel.queue.qsize  # type: ignore[attr-defined]
        clock = asyncio.get_running_loop().time
        wait_s = settings.normalizer.batch_wait_ms / 1000
        batch: list[faust.EventT[Any]] = []
        opened = 0.0
        async for event in manual.events():
            if not batch:
                opened = clock()
            batch.append(event)
            if len(batch) < settings.normalizer.batch_max:
                # Nothing more buffered yet: give the fetcher a moment to bring more, up to
                # `batch_wait_ms` after the batch's first delivery. Closing on every empty
                # buffer made batches of ~150 under load: arrays of ~12 interactions, and
                # the matcher's per-record cost paid 12 times as often.
                # (polled: faust's queue offers no event to await for "more arrived")
                while not waiting() and clock() - opened < wait_s:  # noqa: ASYNC110
                    await asyncio.sleep(0.002)
                if waiting():
                    continue
            try:
                await handle(batch)
            except Exception:
                # Kafka or Redis failed mid-batch. Acked, the batch would be committed and
                # lost: stop before that; the deliveries are read again after the restart
                # (a duplicate is dropped by the dedupe or, at worst, by the matcher).
                log.critical("batch_failed", deliveries=len(batch), exc_info=True)
                os._exit(70)
            for done in batch:
                await manual.ack(done)
            batch = []
