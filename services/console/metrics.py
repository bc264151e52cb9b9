"""Live pipeline figures, read from where they are true: Kafka offsets, the workers' counters
in Redis, the dead-letter topics themselves, and each service's health endpoint."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any, Final

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Gauge
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from schemas.people import person_hash
from services.common.kafka import Topics, committed_offsets, known_brokers, partition_ends
from services.common.redis import Keys
from services.common.settings import Settings

LAG = Gauge(
    "realconnect_consumer_lag",
    "End offset minus committed offset.",
    ["group", "topic", "partition"],
)
REDIS_MEMORY = Gauge("realconnect_redis_used_memory_bytes", "Redis used memory.")
REDIS_KEYS = Gauge("realconnect_redis_keys", "Keys in the Redis database.")
PAIRS = Gauge("realconnect_pairs_tracked", "Pairs the matcher tracks.")
FUNNEL = Gauge("realconnect_funnel", "Pipeline funnel stage counts.", ["stage"])


def _int(v: Any) -> int:
    return int(v or 0)


WITHHELD = "[withheld: it names a person who asked to be forgotten]"


def _strings(value: Any, out: list[str], budget: list[int]) -> None:
    if budget[0] <= 0:
        return
    budget[0] -= 1
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            _strings(k, out, budget)
            _strings(v, out, budget)
    elif isinstance(value, list):
        for v in value:
            _strings(v, out, budget)


def names_forgotten(d: dict[str, Any], forgotten: set[str]) -> bool:
    """Whether a dead letter names a forgotten person: any string of its payload or key, as
    it is or qualified by its source (``mastodon:ann@x``, ``mastodon:@ann@x``), hashes to a
    forgotten id or handle."""
    if not forgotten:
        return False
    strings: list[str] = [*d["key"].split("|")]
    try:
        _strings(orjson.loads(d["payload"]), strings, [20_000])
    except orjson.JSONDecodeError:
        strings.extend(d["payload"].split())
    topic = d.get("source_topic", "")
    source = topic.rsplit(".", 1)[-1] if ".raw." in f".{topic}" else ""
    for s in strings:
        names = [s]
        if source:
            names += [f"{source}:{s}", f"{source}:@{s.lstrip('@')}"]
        if any(person_hash(n) in forgotten for n in names):
            return True
    return False


def withheld(d: dict[str, Any]) -> dict[str, Any]:
    """The dead letter without anything that could name or quote the person."""
    return {**d, "key": "", "payload": WITHHELD, "payload_b64": "", "error": WITHHELD}


#: the matcher's metrics the console shows, by the name it gives them
MATCHER_METRICS: Final = {
    "realconnect_matcher_events_total": "events",
    "realconnect_matcher_records_total": "records",
    "realconnect_matcher_batches_total": "batches",
    "realconnect_matcher_state_writes_total": "state_writes",
    "realconnect_matcher_batch_fallbacks_total": "fallbacks",
    "realconnect_matcher_batch_seconds_sum": "batch_seconds",
    "realconnect_transactions_committed_total": "transactions",
}


def matcher_totals(text: str) -> dict[str, float]:
    """The console's figures from the matcher's Prometheus text (prometheus_client's parser)."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (name := MATCHER_METRICS.get(sample.name)) is not None:
                out[name] = out.get(name, 0.0) + sample.value
    return out


def health_targets(s: Settings) -> dict[str, str]:
    """Where each service's health is read: ingest and feeds at their configured host, the
    workers' web servers on this host, unless ``REALCONNECT_CONSOLE__HEALTH_URLS`` names
    them elsewhere (services in other containers or on other hosts)."""
    local = {
        "ingest": f"http://{s.ingest.host}:{s.ingest.port}/healthz",
        "feeds": f"http://{s.feeds.host}:{s.feeds.port}/healthz",
        "normalizer": f"http://127.0.0.1:{s.normalizer.web_port}/healthz",
        "matcher": f"http://127.0.0.1:{s.matcher.web_port}/healthz",
        "notifier": f"http://127.0.0.1:{s.notifier.web_port}/healthz",
    }
    return local | {str(k): v for k, v in s.console.health_urls.items()}


class PipelineStats:
    """Holds one consumer (end offsets, dead letters) and one admin client (group offsets)."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self._settings = settings
        self._topics = Topics(settings)
        self._keys = Keys(settings)
        self._redis = redis
        bootstrap = settings.kafka.bootstrap_servers
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._http = httpx.AsyncClient(timeout=1.5)
        # dead letters counted so far: (topic, partition) -> (next offset to read, records)
        self._dlq_read: dict[tuple[str, int], tuple[int, int]] = {}
        # the matcher's metric totals at the previous scrape (clock time, totals)
        self._matcher_seen: tuple[float, dict[str, float]] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        await self._admin.start()

    async def stop(self) -> None:
        await self._consumer.stop()
        await self._admin.close()
        await self._http.aclose()

    async def _ends(self, topic: str) -> dict[int, int]:
        return await partition_ends(self._consumer, topic)

    async def _lag(self, topic: str, group: str) -> dict[str, Any]:
        ends, committed_raw = await asyncio.gather(
            self._ends(topic), committed_offsets(self._admin, group, attempts=3, backoff=0.2)
        )
        committed = {tp.partition: m.offset for tp, m in committed_raw.items() if tp.topic == topic}
        per_partition = {
            p: max(0, e - max(committed.get(p, 0), 0)) for p, e in sorted(ends.items())
        }
        for p, lag in per_partition.items():
            LAG.labels(group, topic, str(p)).set(lag)
        return {
            "group": group,
            "topic": topic,
            "lag": sum(per_partition.values()),
            "partitions": per_partition,
        }

    async def _rates(self, seconds: int = 120) -> dict[str, list[int]]:
        now = int(time.time())
        span = range(now - seconds, now)
        async with self._redis.pipeline(transaction=False) as pipe:
            for sec in span:
                pipe.hgetall(self._keys.rate(sec))
            rows = await pipe.execute()
        sources = sorted({k.decode() for row in rows for k in row})
        return {
            "start": [now - seconds],
            **{s: [_int(r.get(s.encode())) for r in rows] for s in sources},
        }

    async def _count_dead_letters(self) -> int:
        """The records on both dead-letter topics, counted by reading them ``read_committed``
        (end offsets also count transaction markers, and an aborted transaction's records):
        each refresh reads only what came since the last, from where it stopped."""
        t = self._topics
        for topic in (t.interactions_dlq, t.suggestions_dlq):
            ends = await self._ends(topic)
            behind = [
                TopicPartition(topic, p)
                for p, end in ends.items()
                if self._dlq_read.get((topic, p), (0, 0))[0] < end
            ]
            if not behind:
                continue
            reader = AIOKafkaConsumer(
                bootstrap_servers=self._settings.kafka.bootstrap_servers,
                enable_auto_commit=False,
                isolation_level="read_committed",
                auto_offset_reset="earliest",  # the oldest may be gone with retention
            )
            await reader.start()
            try:
                reader.assign(behind)
                for tp in behind:
                    reader.seek(tp, self._dlq_read.get((topic, tp.partition), (0, 0))[0])
                deadline = time.monotonic() + 3.0  # an open transaction holds the reader back
                left = set(behind)
                while left and time.monotonic() < deadline:
                    fetched = await reader.getmany(*left, timeout_ms=300, max_records=50_000)
                    for tp, records in fetched.items():
                        at, n = self._dlq_read.get((topic, tp.partition), (0, 0))
                        self._dlq_read[(topic, tp.partition)] = (at, n + len(records))
                    for tp in list(left):
                        position = await reader.position(tp)
                        at, n = self._dlq_read.get((topic, tp.partition), (0, 0))
                        self._dlq_read[(topic, tp.partition)] = (position, n)
                        if position >= ends[tp.partition]:
                            left.discard(tp)
            finally:
                await reader.stop()
        return sum(n for _, n in self._dlq_read.values())

    async def _matcher(self) -> dict[str, Any] | None:
        """The matcher's own metrics (its ``/metrics``, services/matcher/metrics.py): totals,
        and rates since the previous scrape of this console. None if it does not answer."""
        s = self._settings
        token = (s.admin_tokens.get("metrics") or s.admin_token).get_secret_value()
        url = f"http://127.0.0.1:{s.matcher.web_port}/metrics"
        try:
            r = await self._http.get(url, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError:
            return None
        if r.status_code != 200:
            return None
        totals = matcher_totals(r.text)
        now = time.monotonic()
        previous, self._matcher_seen = self._matcher_seen, (now, totals)
        out: dict[str, Any] = {"totals": totals}
        if previous is not None and now > previous[0]:
            dt = now - previous[0]
            d = {k: totals.get(k, 0.0) - previous[1].get(k, 0.0) for k in totals}
            batches = d.get("batches", 0.0)
            out |= {
                "events_per_s": round(d.get("events", 0.0) / dt, 1),
                "batches_per_s": round(batches / dt, 2),
                "state_writes_per_s": round(d.get("state_writes", 0.0) / dt, 1),
                "transactions_per_s": round(d.get("transactions", 0.0) / dt, 2),
                "records_per_batch": round(d.get("records", 0.0) / batches, 1) if batches else None,
                "ms_per_batch": round(1000 * d.get("batch_seconds", 0.0) / batches, 2)
                if batches
                else None,
            }
        return out

    async def _health(self) -> dict[str, str]:
        targets = health_targets(self._settings)

        async def check(url: str) -> str:
            try:
                r = await self._http.get(url)
                return "up" if r.status_code == 200 else f"http {r.status_code}"
            except httpx.HTTPError:
                return "down"

        results = await asyncio.gather(*(check(u) for u in targets.values()))
        out = dict(zip(targets, results, strict=True))
        out["kafka"] = "up" if known_brokers(self._consumer) else "down"
        try:
            out["redis"] = "up" if await self._redis.ping() else "down"
        except Exception:
            out["redis"] = "down"
        return out

    async def connectors(self, stale_after_s: float = 15.0) -> list[dict[str, Any]]:
        """Each connector's last status line; one not heard from for ``stale_after_s``
        (a connector writes every 2 s) is shown as ``silent``, whatever it last said."""
        now = time.time()
        out = []
        for field, raw in (await self._redis.hgetall(self._keys.connectors)).items():
            try:
                status = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if now - float(status.get("updated_at") or 0) > stale_after_s and not str(
                status.get("state", "")
            ).startswith("stopped"):
                status["state"] = "silent"
            status["name"] = field.decode() if isinstance(field, bytes) else field
            out.append(status)
        return sorted(out, key=lambda s: s["name"])

    async def snapshot(self) -> dict[str, Any]:
        t = self._topics
        dead_letters = await self._count_dead_letters()
        stats_raw, matcher_raw, pairs, memory, keys = await asyncio.gather(
            self._redis.hgetall(self._keys.stats),
            self._redis.hgetall(self._keys.matcher_counts),
            self._redis.hvals(self._keys.pairs_tracked),
            self._redis.info("memory"),
            self._redis.dbsize(),
        )
        stats = {k.decode(): _int(v) for k, v in stats_raw.items()}
        # the matcher's counters, per partition: summed (absolute values, see Keys)
        matcher: dict[str, int] = {}
        for field, value in matcher_raw.items():
            name = (field.decode() if isinstance(field, bytes) else field).rsplit(":", 1)[0]
            matcher[name] = matcher.get(name, 0) + _int(value)
        lags = await asyncio.gather(
            self._lag(t.interactions, t.app_id("matcher")),
            self._lag(t.suggestions, t.app_id("notifier")),
            *(self._lag(topic, t.raw_group) for topic in t.raw_all),
        )
        # counted in events by whoever produced them (records may carry many events each)
        interactions_in = stats.get("interactions_in", 0)
        # the matcher's own count, kept with its pair states (exactly once); the topic's end
        # offsets also count its transactions' commit markers
        suggestions = matcher.get("suggestions_emitted", 0)
        funnel = [
            ("interactions", interactions_in),
            ("meaningful interactions", matcher.get("meaningful_interactions", 0)),
            ("candidate pairs", matcher.get("candidate_pairs", 0)),
            ("suggestions", suggestions),
            ("delivered", stats.get("suggestions_delivered", 0)),
            ("accepted", stats.get("responses_accepted", 0)),
            ("met", stats.get("responses_met", 0)),
        ]
        for stage, value in funnel:
            FUNNEL.labels(stage).set(value)
        pairs_tracked = sum(_int(v) for v in pairs)
        PAIRS.set(pairs_tracked)
        REDIS_MEMORY.set(_int(memory.get("used_memory")))
        REDIS_KEYS.set(keys)
        return {
            "at": time.time(),
            "interactions_in": interactions_in,
            "pairs_tracked": pairs_tracked,
            "suggestions_emitted": suggestions,
            "group_suggestions": matcher.get("group_suggestions", 0),
            "interactions_processed": matcher.get("interactions_processed", 0),
            "suggestions_delivered": stats.get("suggestions_delivered", 0),
            "feed_items": stats.get("feed_items", 0),
            "dead_letters": dead_letters,
            # the matcher's transactions that failed to commit (each stopped its worker)
            "transaction_aborts": stats.get("transaction_aborts", 0),
            "funnel": [{"stage": s, "count": c} for s, c in funnel],
            "lag": [lag for lag in lags if lag["partitions"]],
            "rates": await self._rates(),
            "redis": {"used_memory": _int(memory.get("used_memory")), "keys": keys},
            "health": await self._health(),
            "connectors": await self.connectors(),
            "matcher": await self._matcher(),
        }

    async def dead_letters(self, limit: int = 25) -> list[dict[str, Any]]:
        """The latest dead letters of both dead-letter topics, newest first."""
        out: list[dict[str, Any]] = []
        for topic in (self._topics.interactions_dlq, self._topics.suggestions_dlq):
            ends = await self._ends(topic)
            tps = [TopicPartition(topic, p) for p, end in ends.items() if end > 0]
            if not tps:
                continue
            reader = AIOKafkaConsumer(
                bootstrap_servers=self._settings.kafka.bootstrap_servers,
                enable_auto_commit=False,
                isolation_level="read_committed",  # not an aborted transaction's
            )
            await reader.start()
            try:
                reader.assign(tps)
                for tp in tps:
                    reader.seek(tp, max(0, ends[tp.partition] - limit))
                remaining = set(tps)
                # a transaction still open holds a read_committed reader back: what is
                # committed by then is shown
                deadline = time.monotonic() + 3.0
                while remaining and time.monotonic() < deadline:
                    batch = await reader.getmany(*remaining, timeout_ms=500)
                    for records in batch.values():
                        for r in records:
                            h = {k: v.decode("utf-8", "replace") for k, v in r.headers}
                            out.append(
                                {
                                    "topic": topic,
                                    "partition": r.partition,
                                    "offset": r.offset,
                                    "timestamp": r.timestamp / 1000,
                                    "reason": h.get("dlq.reason", ""),
                                    "error": h.get("dlq.error", ""),
                                    "service": h.get("dlq.service", ""),
                                    "source_topic": h.get("dlq.topic", ""),
                                    "key": (r.key or b"").decode("utf-8", "replace"),
                                    "payload": (r.value or b"")[:20_000].decode("utf-8", "replace"),
                                    "payload_b64": base64.b64encode(
                                        (r.value or b"")[:20_000]
                                    ).decode(),
                                }
                            )
                    for tp in list(remaining):
                        if await reader.position(tp) >= ends[tp.partition]:
                            remaining.discard(tp)
            finally:
                await reader.stop()
        out.sort(key=lambda d: d["timestamp"], reverse=True)
        out = out[:limit]
        forgotten = {
            h.decode() if isinstance(h, bytes) else h
            for key in (self._keys.forgotten, self._keys.forgotten_names)
            for h in await self._redis.smembers(key)
        }
        return [withheld(d) if names_forgotten(d, forgotten) else d for d in out]
