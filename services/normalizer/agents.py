"""Thin faust I/O: raw delivery -> adapter -> directory look-ups -> identities ->
canonical interactions on ``interactions`` (keyed by pair), or a dead letter."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
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
from schemas.text import shown_safely
from services.common import records
from services.common.batches import BatchConsumer
from services.common.dedupe import EventDedupe
from services.common.dlq import send_dead_letter
from services.common.kafka import Topics
from services.common.redis import Keys
from services.common.settings import Settings
from services.normalizer.directory import TTL_S, Directory
from services.normalizer.members import Members, lookups
from services.normalizer.normalize import expand, to_interactions
from services.sources import SOURCES, Extraction, Meta
from services.sources.automated import is_automated

log = structlog.get_logger(__name__)
#: the longest platform name kept (a profile's display name has the same bound)
MAX_NAME = 200
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


def meta_of(record: ConsumerRecord[bytes, bytes]) -> Meta:
    """What ingest recorded about a delivery, from the record's headers."""
    h = _headers(record)
    received = datetime.fromisoformat(h["received_at"]) if "received_at" in h else None
    return Meta(
        delivery_id=h.get("delivery_id", ""),
        received_at=received or datetime.fromtimestamp(record.timestamp / 1000, UTC),
        event=h.get("event"),
        origin=h.get("origin"),
    )


class Normalizer:
    """Raw deliveries, a batch at a time, into canonical interactions on Kafka."""

    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        directory: Directory,
        dedupe: EventDedupe,
        *,
        members: Members,
        out: faust.TopicT,
        dlq: faust.TopicT,
        linked: Any,
    ) -> None:
        t = Topics(settings)
        self.settings, self.redis, self.directory, self.dedupe = settings, redis, directory, dedupe
        self.members = members
        self.keys = Keys(settings)
        self.out, self.dlq = out, dlq
        # the identities table's own dict (memory store): two look-ups per interaction, and
        # faust's Mapping layers cost more than the look-up itself
        self.linked = linked
        self.prefix = t.name(topic_names.RAW_PREFIX)
        self._dead_sent: list[Any] = []  # the current batch's dead letters, not yet acked
        # the operators' list of automated accounts and the accounts payloads flagged as bots,
        # read once per batch (small sets)
        self._listed: frozenset[str] = frozenset()
        self._names: dict[str, str] = {}  # the platform names this worker wrote last

    def person_of(self, handle: str) -> str | None:
        value = self.linked.get(handle.encode())
        return None if value is None else str(orjson.loads(value)["person_id"])

    def automated(self, handle: str) -> bool:
        return is_automated(handle, self._listed)

    async def dead(
        self, record: ConsumerRecord[bytes, bytes], source: str, reason: str, error: str
    ) -> None:
        DEAD.labels(source, reason).inc()
        sent = await send_dead_letter(
            self.dlq, record, reason=reason, error=error, service="normalizer"
        )
        self._dead_sent.append(sent)  # acknowledged before the batch is committed (`handle`)

    async def extract(self, record: ConsumerRecord[bytes, bytes]) -> list[Interaction]:
        """One raw delivery -> its interactions (unresolved and failed ones dead-lettered)."""
        source = _headers(record).get("source") or record.topic.removeprefix(self.prefix)
        spec = SOURCES.get(source)
        if spec is None:
            await self.dead(record, source, "unknown_source", f"no adapter for {source!r}")
            return []
        try:
            payload = spec.payload.validate_json(record.value or b"")
            extraction = spec.extract(payload, meta_of(record))
            await self.flagged(extraction.bots)
            await self.named(extraction.names)
            extraction = await self.in_groups(source, extraction)
            refs = [d.target_ref for d in extraction.drafts if d.target is None and d.target_ref]
            resolved = await self.directory.resolve(source, refs)
            outcome = to_interactions(source, extraction, resolved, self.person_of, self.automated)
        except Exception as exc:
            await self.dead(record, source, "adapter", f"{type(exc).__name__}: {exc}")
            return []
        # learnt before the next delivery is read: a reply later in the batch resolves
        await self.directory.learn(source, extraction.learned)
        if outcome.invalid:
            errors = "; ".join(f"{d.event_id}: {error}" for d, error in outcome.invalid[:5])
            await self.dead(record, source, "invalid_interaction", errors)
        if outcome.unresolved:
            refs = sorted({d.target_ref or "" for d in outcome.unresolved})
            missing = "no handle known for " + ", ".join(refs[:20])
            await self.dead(record, source, "unresolved_counterpart", missing)
        log.debug(
            "delivery_normalized",
            source=source,
            interactions=len(outcome.interactions),
            ignored=extraction.ignored,
            unresolved=len(outcome.unresolved),
        )
        return outcome.interactions

    async def flagged(self, bots: tuple[str, ...]) -> None:
        """Remember the accounts a payload flags as bots: a reaction, reply or mention to
        one later (whose payload names only an id) is no exchange between people."""
        if bots and not set(bots) <= self._listed:
            self._listed = self._listed | set(bots)
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.sadd(self.keys.automated_flagged, *bots)
                pipe.expire(self.keys.automated_flagged, TTL_S)
                await pipe.execute()

    async def named(self, names: dict[str, str]) -> None:
        """Remember the names platforms show for accounts (a rename replaces the old one);
        one that could not be shown as it is (control or direction-changing characters) is
        not kept. Written only when it changed since this worker last wrote it."""
        fresh: dict[str, str] = {}
        for handle, name in names.items():
            shown = name[:MAX_NAME]
            if self._names.get(handle) == shown:
                continue  # written already: most deliveries name the same people
            try:
                shown_safely(shown)
            except ValueError:
                continue
            fresh[handle] = shown
        if fresh:
            mapping: dict[Any, Any] = fresh  # redis-py's Mapping is invariant in its key
            await self.redis.hset(self.keys.platform_names, mapping=mapping)
            if len(self._names) > 100_000:  # a cache, bounded: forget what it knew
                self._names.clear()
            self._names.update(fresh)

    async def in_groups(self, source: str, extraction: Extraction) -> Extraction:
        """A message to a group conversation, as one draft per other member (the members
        this payload shows are learnt first)."""
        if extraction.members:
            await self.members.learn(source, extraction.members)
        groups = [d.members_ref for d in extraction.drafts if d.members_ref]
        if not groups:
            return extraction
        known = await self.members.of(source, groups)
        return replace(extraction, drafts=expand(extraction.drafts, known, extraction.bots))

    async def handle(self, deliveries: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Normalise a batch of deliveries: one dedupe look-up, one produce of arrays per
        partition and one dedupe marking per batch instead of per delivery. Returns once
        Kafka acknowledged every record (the batch's offsets are committed after that)."""
        listed = await self.redis.sunion([self.keys.automated, self.keys.automated_flagged])
        self._listed = frozenset(m.decode() if isinstance(m, bytes) else m for m in listed)
        found: list[Interaction] = []
        for record in deliveries:
            found += await self.extract(record)
        new = await self.unseen(found)
        futures = []
        cfg = self.settings.kafka
        for r in records.encode(new, cfg.partitions, cfg.interactions_per_record):
            futures.append(await self.out.send(key=r.key, value=r.value, partition=r.partition))
        for f in futures:
            await f  # acknowledged before the dedupe marker: a crash duplicates, never loses
        while self._dead_sent:  # so are the dead letters, before the offsets are committed
            await self._dead_sent.pop()
        if new:
            async with self.redis.pipeline(transaction=False) as pipe:
                self.dedupe.mark_in(pipe, [(i.source, i.event_id) for i in new])
                pipe.hincrby(self.keys.stats, "interactions_in", len(new))  # console's funnel
                await pipe.execute()
        for (source, kind), count in Counter((i.source, i.kind) for i in new).items():
            NORMALIZED.labels(source, kind).inc(count)

    async def unseen(self, found: list[Interaction]) -> list[Interaction]:
        """The interactions not seen before (one dedupe look-up), once each."""
        ids = [(i.source, i.event_id) for i in found]
        fresh = await self.dedupe.unseen(ids)
        new: list[Interaction] = []
        here: set[tuple[str, str]] = set()
        for i, key, is_new in zip(found, ids, fresh, strict=True):
            if is_new and key not in here:  # also the first of two copies in one batch
                new.append(i)
                here.add(key)
        return new


def register(
    app: faust.App, settings: Settings, redis: Redis, directory: Directory, dedupe: EventDedupe
) -> None:
    t = Topics(settings)
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
    normalizer = Normalizer(
        settings,
        redis,
        directory,
        dedupe,
        members=Members(redis, Keys(settings), lookups(settings)),
        out=app.topic(t.interactions, key_serializer="raw", value_serializer="raw"),
        dlq=app.topic(t.interactions_dlq, key_serializer="raw", value_serializer="raw"),
        linked=getattr(identities.data, "data", identities),
    )

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

    # Raw deliveries are read outside faust's per-message path (services.common.batches):
    # one small record per webhook delivery made that path half of this worker's CPU.
    raw = BatchConsumer(
        settings,
        t.raw_all,
        group_id=t.raw_group,
        client_id=t.app_id("normalizer"),
        handle=normalizer.handle,
        max_records=settings.normalizer.batch_max,
        wait_ms=settings.normalizer.batch_wait_ms,
    )

    @app.task  # type: ignore[untyped-decorator]
    async def normalize() -> None:
        # started once the identities table is restored; a failed batch exits (70) before
        # its offsets are committed, and is read again after the restart
        await raw.run()
