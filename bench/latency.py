"""HTTP accept -> feed item latency at a fixed offered rate (make bench).

Runs ingest, feeds, matcher and notifier as processes in a namespace of their own (on free
ports, with the test suite's service harness), against the running Kafka and Redis:

1. opts in the people of ``--pairs`` conversations (double opt-in, through the feed API);
2. sends each conversation's history but its last message, and waits until applied;
3. offers ``--rate`` events/s for ``--seconds`` (open loop: a batch request every 20 ms,
   whatever the answers' delay), noise between strangers plus, spread over the run, the last
   message of each conversation, which triggers its suggestion;
4. reads the compacted ``feeds`` topic: a suggestion's latency is from the moment its
   triggering request was *sent* to the timestamp of the later of its two feed items (the
   notifier writes each item to that topic, then to Redis, in the same few milliseconds).

Every service runs with its default settings (the matcher's lateness of 1 h included: a
suggestion does not wait for it, ``MATCHER__SUGGEST_EARLY``); only ingest's per-source rate
limit is raised for the offered load.

Run: ``python -m bench.latency`` with Kafka and Redis up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer

from services.common.kafka import Topics, delete_namespace_topics, ensure_topics
from services.common.settings import Settings
from tests.stack import ServiceStack

BATCH_EVERY_S = 0.02


def event(run: str, n: int, actor: str, target: str, at: datetime, kind: str) -> dict[str, Any]:
    return {
        "source": "bench",
        "event_id": f"{run}-{n}",
        "kind": kind,
        "actor": actor,
        "target": target,
        "occurred_at": at.isoformat(),
    }


async def opt_in(client: httpx.AsyncClient, person: str, admin: dict[str, str]) -> None:
    r = await client.post(f"/v1/people/{person}/tokens", headers=admin)
    r.raise_for_status()
    auth = {"authorization": f"Bearer {r.json()['token']}"}
    body = {"opted_in": True, "max_per_week": 50}
    (await client.put("/v1/me/preferences", json=body, headers=auth)).raise_for_status()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base = Settings()
    settings = Settings(namespace=f"{base.namespace or 'bench'}-lat")
    await ensure_topics(settings)
    run_id = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    stack = ServiceStack(
        settings,
        workdir,
        ("ingest", "feeds", "matcher", "notifier"),
        REALCONNECT_INGEST__RATE_PER_S="1000000",
        REALCONNECT_INGEST__BURST="1000000",
    )
    await asyncio.to_thread(stack.start)
    admin = {"authorization": f"Bearer {settings.admin_token.get_secret_value()}"}
    pairs = [(f"lat{run_id}a{i}", f"lat{run_id}b{i}") for i in range(args.pairs)]
    n = 0
    try:
        async with (
            httpx.AsyncClient(base_url=stack.url("feeds"), timeout=30) as feeds,
            httpx.AsyncClient(
                base_url=stack.url("ingest"),
                timeout=30,
                headers={"authorization": "Bearer dev-producer-token"},
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            ) as ingest,
        ):
            sem = asyncio.Semaphore(16)

            async def guarded(person: str) -> None:
                async with sem:
                    await opt_in(feeds, person, admin)

            await asyncio.gather(*(guarded(p) for pair in pairs for p in pair))

            # each conversation but its last message, sent now. With the default tie-strength
            # model a pair needs weeks of contact: a writes every week for eight weeks, b
            # answers in weeks 6 and 7; b's third message (now, week 8) is the trigger that
            # makes the pair reciprocal enough (3 each way) while its weeks make it close
            day0 = datetime.now(UTC) - timedelta(weeks=8, hours=1)
            history: list[dict[str, Any]] = []
            triggers: list[dict[str, Any]] = []
            for a, b in pairs:
                for week in range(8):
                    n += 1
                    at = day0 + timedelta(weeks=week)
                    history.append(event(run_id, n, a, b, at, "message"))
                for week in (6, 7):
                    n += 1
                    at = day0 + timedelta(weeks=week, hours=2)
                    history.append(event(run_id, n, b, a, at, "message"))
                n += 1
                triggers.append(
                    event(run_id, n, b, a, datetime.now(UTC) - timedelta(minutes=1), "message")
                )
            history.sort(key=lambda e: e["occurred_at"])  # in time order, as live traffic
            for start in range(0, len(history), 1000):
                r = await ingest.post("/v1/interactions:batch", json=history[start : start + 1000])
                r.raise_for_status()
            await asyncio.sleep(3)  # consumed (the last of each history waits in its buffer)

            # the load: open loop, a batch every 20 ms; triggers spread evenly over the run
            per_batch = max(1, round(args.rate * BATCH_EVERY_S))
            batches = int(args.seconds / BATCH_EVERY_S)
            every = max(1, batches // max(1, len(triggers)))
            sent_at: dict[tuple[str, str], float] = {}
            accepted = rejected = 0
            tasks = []

            async def post(body: list[dict[str, Any]], trig: tuple[str, str] | None) -> None:
                nonlocal accepted, rejected
                t0 = time.time()
                if trig is not None:
                    sent_at[trig] = t0
                r = await ingest.post("/v1/interactions:batch", json=body)
                if r.status_code == 202:
                    accepted += len(body)
                else:
                    rejected += len(body)

            start_t = time.monotonic()
            pending_triggers = list(triggers)
            for k in range(batches):
                body = []
                trig: tuple[str, str] | None = None
                if k % every == 0 and pending_triggers:
                    t = pending_triggers.pop()
                    body.append(t)
                    trig = (min(t["actor"], t["target"]), max(t["actor"], t["target"]))
                while len(body) < per_batch:
                    n += 1
                    x, y = (n * 7919) % 200_000, (n * 104_729 + 1) % 200_000
                    if x == y:
                        continue
                    body.append(event(run_id, n, f"n{x}", f"n{y}", datetime.now(UTC), "like"))
                tasks.append(asyncio.create_task(post(body, trig)))
                delay = start_t + (k + 1) * BATCH_EVERY_S - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await asyncio.gather(*tasks)
            elapsed = time.monotonic() - start_t

        # the feed items, with the time the notifier produced each
        done_at = await feed_times(settings, set(sent_at), timeout=60)
    finally:
        await asyncio.to_thread(stack.stop)
        await delete_namespace_topics(base.kafka.bootstrap_servers, [settings.namespace])

    lat = sorted((done_at[p] - sent_at[p]) * 1000 for p in sent_at if p in done_at)
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else lat * 99
    return {
        "offered_rate": args.rate,
        "settings": "defaults",
        "achieved_rate": accepted / elapsed,
        "rejected": rejected,
        "suggestions_expected": len(sent_at),
        "suggestions_delivered": len(lat),
        "p50_ms": q[49],
        "p99_ms": q[98],
        "max_ms": lat[-1] if lat else float("nan"),
    }


async def feed_times(
    settings: Settings, wanted: set[tuple[str, str]], timeout: float
) -> dict[tuple[str, str], float]:
    """Per pair, when the later of its two feed items was produced (epoch seconds)."""
    consumer = AIOKafkaConsumer(
        Topics(settings).feeds,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    items: dict[tuple[str, str], list[float]] = {}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for recs in (await consumer.getmany(timeout_ms=500)).values():
                for r in recs:
                    if r.value is None:
                        continue
                    item = orjson.loads(r.value)
                    a, b = item["person_id"], item["other_person_id"]
                    pair = (min(a, b), max(a, b))
                    if pair in wanted and item["type"] == "suggestion":
                        items.setdefault(pair, []).append(r.timestamp / 1000)
            if sum(len(v) >= 2 for v in items.values()) >= len(wanted):
                break
    finally:
        await consumer.stop()
    return {p: max(ts) for p, ts in items.items() if len(ts) >= 2}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=5000, help="offered events/s")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--pairs", type=int, default=200, help="suggestions to time")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    figures = asyncio.run(run(args))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
