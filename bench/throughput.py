"""Throughput of the pipeline against the bare Kafka client, on the same events (make bench).

- **floor**: a bare aiokafka loop that consumes the events, parses each (orjson), counts per
  pair and produces one record per event: what the Kafka client itself can do here. It runs
  on both layouts of the ``interactions`` topic (one event per record, and the arrays the
  pipeline writes); the faster of the two is the reference.
- **pipeline**: the real normalizer and matcher (faust, rocksdict table, pure pair logic) on
  the same events, delivered raw (one delivery per event, as the webhooks write them), from
  the first delivery the normalizer committed to the last record the matcher committed.
- **matcher**: the matcher alone on the same events already in array records.

All read the same Higgs Twitter slice from topics of the same partition count on the same
broker. The floor and the pipeline run in interleaved rounds (``--rounds``, 3): each round
gives a ratio of the pipeline to the faster floor of that round, and ``pipeline_ratio`` is
the median of those ratios. Every round's figures are reported: on a shared machine one run
of either can be 20% off.

Run: ``python -m bench.throughput --events 200000`` with Kafka and Redis up; the script
starts and stops its own normalizer and matcher (in namespaces of their own) so that the
timing starts at zero.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from redis.asyncio import Redis

from bench import git_commit
from services.common import records
from services.common.kafka import (
    LagProbe,
    Topics,
    delete_namespace_topics,
    ensure_topics,
    new_producer,
)
from services.common.records import Record
from services.common.redis import Keys, new_redis
from services.common.settings import Settings
from services.datasets import higgs


async def load(
    settings: Settings,
    topic: str,
    records: list[Record],
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    producer = new_producer(settings, client_id="bench-load")
    await producer.start()
    try:
        batch = []
        for r in records:
            batch.append(
                await producer.send(
                    topic, key=r.key, value=r.value, partition=r.partition, headers=headers
                )
            )
            if len(batch) >= 10_000:
                await asyncio.gather(*batch)
                batch.clear()
        await asyncio.gather(*batch)
    finally:
        await producer.stop()


async def floor(settings: Settings, topic: str, out: str, n: int, group: str = "floor") -> float:
    """Bare aiokafka: consume -> parse -> count per pair -> produce one record per event,
    events/s. Reads either layout (one interaction per record, or arrays)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=f"{topic}-{group}",
        max_poll_records=5000,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        linger_ms=5,
        max_batch_size=1024 * 1024,
        acks=1,
    )
    await consumer.start()
    await producer.start()
    counts: Counter[bytes] = Counter()
    pending: list[asyncio.Future[object]] = []
    seen = 0
    start: float | None = None
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if start is None and batch:
                start = time.perf_counter()
            for recs in batch.values():
                for r in recs:
                    value = orjson.loads(r.value)
                    for e in value if isinstance(value, list) else (value,):
                        key = f"{min(e['actor'], e['target'])}|{max(e['actor'], e['target'])}"
                        k = key.encode()
                        counts[k] += 1
                        pending.append(
                            await producer.send(
                                out, key=k, value=orjson.dumps({"k": e["kind"], "n": counts[k]})
                            )
                        )
                        seen += 1
        await asyncio.gather(*pending)
        await consumer.commit()
        assert start is not None
        return n / (time.perf_counter() - start)
    finally:
        await consumer.stop()
        await producer.stop()


#: The matcher flushes what it buffered for lateness once its input has been quiet this
#: long (wall clock). At the end of a finite replay that is pure waiting, not work: the bench
#: shortens it so that the measured time is processing time.
WORKER_ENV = {
    "REALCONNECT_MATCHER__IDLE_FLUSH_S": "0.5",
    "REALCONNECT_MATCHER__TICK_INTERVAL_S": "0.25",
}


def _worker(name: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own CLI
            [str(Path(sys.executable).parent / "realconnect"), "worker", name],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ | WORKER_ENV,
        )


async def _pending(redis: Redis, settings: Settings) -> int:
    """Pairs whose events the matcher still buffers (published each second)."""
    return sum(int(v) for v in (await redis.hvals(Keys(settings).pairs_pending)))


async def _committed(probe: LagProbe, topic: str, group: str) -> tuple[int, int]:
    """(events committed by ``group`` on ``topic``, events on ``topic``)."""
    lag = await probe.lag(topic, group)
    done = sum(min(lag.committed.get(p, 0), e) for p, e in lag.end.items())
    return done, sum(lag.end.values())


async def pipeline(settings: Settings, n: int, timeout: float) -> float:
    """Normalizer + matcher on ``n`` raw deliveries, from the first delivery committed by
    the normalizer to the last interactions record committed by the matcher: events/s."""
    t = Topics(settings)
    raw = t.raw("generic")
    logs = Path(".run/logs")
    procs = [_worker("normalizer", logs / "bench-normalizer.log")]
    procs.append(_worker("matcher", logs / "bench-matcher.log"))
    redis = new_redis(settings)
    try:
        # long-lived clients: the watching must not take CPU from the workers it measures
        async with LagProbe(settings.kafka.bootstrap_servers) as probe:
            first: tuple[float, int] | None = None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                normalized, _ = await _committed(probe, raw, t.raw_group)
                matched, written = await _committed(probe, t.interactions, t.app_id("matcher"))
                now = time.perf_counter()
                if first is None and normalized > 0:
                    first = (now, normalized)
                done = first is not None and normalized >= n and written and matched >= written
                if done and first is not None and await _pending(redis, settings) == 0:
                    # every event consumed and applied (nothing left buffered for lateness)
                    return (n - first[1]) / (time.perf_counter() - first[0])
                await asyncio.sleep(0.1)
            raise TimeoutError("the pipeline did not finish")
    finally:
        await redis.aclose()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)


async def matcher_only(settings: Settings, n_records: int, n: int, timeout: float) -> float:
    """The matcher alone on interactions already on its topic, events/s."""
    t = Topics(settings)
    proc = _worker("matcher", Path(".run/logs/bench-matcher.log"))
    redis = new_redis(settings)
    try:
        async with LagProbe(settings.kafka.bootstrap_servers) as probe:
            first: tuple[float, int] | None = None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                matched, _ = await _committed(probe, t.interactions, t.app_id("matcher"))
                now = time.perf_counter()
                if first is None and matched > 0:
                    first = (now, matched)
                if (
                    first is not None
                    and matched >= n_records
                    and await _pending(redis, settings) == 0
                ):
                    # records, not events, are committed: scale by events per record
                    return n * (1 - first[1] / n_records) / (time.perf_counter() - first[0])
                await asyncio.sleep(0.1)
            raise TimeoutError("the matcher did not finish")
    finally:
        await redis.aclose()
        proc.terminate()
        proc.wait(timeout=60)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base = Settings()
    events = list(higgs.interactions(args.data_dir, limit=args.events))
    n = len(events)
    per_record = base.kafka.interactions_per_record
    parts = base.kafka.partitions

    # the floor's input, on both layouts of the same events
    t = Topics(base)
    single_in, arrays_in = t.name("bench.floor.single"), t.name("bench.floor.arrays")
    floor_out = t.name("bench.floor.out")
    await ensure_topics(base, [single_in, arrays_in, floor_out])
    await load(base, single_in, records.encode(events, parts, 1))
    await load(base, arrays_in, records.encode(events, parts, per_record))
    raw = [
        records.Record(e.event_id.encode(), e.model_dump_json().encode(), None, 1) for e in events
    ]
    headers = [("source", b"generic"), ("received_at", b"2026-01-01T00:00:00+00:00")]

    rounds: list[dict[str, float]] = []
    namespaces = [base.namespace]
    for i in range(args.rounds):
        # 1. the floor on both layouts (a consumer group of this round: from the start)
        floor_single = await floor(base, single_in, floor_out, n, group=f"floor-{i}")
        floor_arrays = await floor(base, arrays_in, floor_out, n, group=f"floor-{i}")
        # 2. normalizer + matcher from raw deliveries (one per event, as the webhooks write
        # them), in a namespace of this round: new topics, new consumer groups, new state
        pipe_settings = Settings(namespace=f"{base.namespace}-pipe{i}")
        namespaces.append(pipe_settings.namespace)
        await ensure_topics(pipe_settings)
        await load(pipe_settings, Topics(pipe_settings).raw("generic"), raw, headers)
        os.environ["REALCONNECT_NAMESPACE"] = pipe_settings.namespace
        pipe_rate = await pipeline(pipe_settings, n, timeout=args.timeout)
        floor_rate = max(floor_single, floor_arrays)
        rounds.append(
            {
                "floor_single": floor_single,
                "floor_arrays": floor_arrays,
                "pipeline": pipe_rate,
                "ratio": pipe_rate / floor_rate,
            }
        )
        print(
            f"round {i + 1}/{args.rounds}: floor {floor_rate:,.0f}/s, pipeline "
            f"{pipe_rate:,.0f}/s, ratio {pipe_rate / floor_rate:.3f}",
            flush=True,
        )

    # 3. the matcher alone, on the arrays it reads in production
    m_settings = Settings(namespace=f"{base.namespace}-matcher")
    namespaces.append(m_settings.namespace)
    await ensure_topics(m_settings)
    arrays = records.encode(events, parts, per_record)
    await load(m_settings, Topics(m_settings).interactions, arrays)
    os.environ["REALCONNECT_NAMESPACE"] = m_settings.namespace
    matcher_rate = await matcher_only(m_settings, len(arrays), n, timeout=args.timeout)

    await delete_namespace_topics(base.kafka.bootstrap_servers, namespaces)
    # the round with the median ratio gives the headline figures
    mid = sorted(rounds, key=lambda r: r["ratio"])[(len(rounds) - 1) // 2]
    floor_rate = max(mid["floor_single"], mid["floor_arrays"])
    return {
        "events": n,
        "per_record": per_record,
        "rounds": rounds,
        "floor_single": mid["floor_single"],
        "floor_arrays": mid["floor_arrays"],
        "pipeline": mid["pipeline"],
        "matcher": matcher_rate,
        "pipeline_ratio": statistics.median(r["ratio"] for r in rounds),
        "matcher_ratio": matcher_rate / floor_rate,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument(
        "--rounds", type=int, default=3, help="interleaved floor and pipeline runs (median)"
    )
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    ap.add_argument("--ingest-json", type=Path, help="figures of bench.ingest_load to include")
    ap.add_argument("--latency-json", type=Path, help="figures of bench.latency to include")
    args = ap.parse_args()
    r = asyncio.run(run(args))
    commit = git_commit()
    text = (
        f"\n### Throughput — {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
        f"commit `{commit}`\n\n"
        f"{r['events']:,} Higgs Twitter interactions on one broker, same partition count; "
        f"{os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}. The pipeline reads one raw delivery per event and "
        f"carries up to {r['per_record']} interactions per `interactions` record.\n\n"
        f"Floor and pipeline ran in {len(r['rounds'])} interleaved rounds; the figures are "
        f"those of the round with the median ratio, and every round is listed below.\n\n"
        f"| measure | events/s |\n|---|---|\n"
        f"| floor: bare aiokafka consume → parse → count per pair → produce, one event per "
        f"record | {r['floor_single']:,.0f} |\n"
        f"| floor: the same loop on the pipeline's array records | {r['floor_arrays']:,.0f} |\n"
        f"| pipeline: normalizer + matcher, first delivery committed to last interaction "
        f"committed | {r['pipeline']:,.0f} |\n"
        f"| matcher alone, on array records | {r['matcher']:,.0f} |\n"
        f"| **pipeline_ratio** = median over the rounds of pipeline ÷ that round's faster "
        f"floor (target ≥ 0.25) | **{r['pipeline_ratio']:.3f}** |\n"
        f"| matcher_ratio | {r['matcher_ratio']:.3f} |\n"
    )
    summary = ""
    if args.ingest_json and args.ingest_json.exists():
        g = json.loads(args.ingest_json.read_text())
        text += (
            f"| ingest alone ({g.get('ingest_workers', 1)} uvicorn processes), single-event "
            f"requests (wrk, 64 connections; target ≥ 5,000/s) "
            f"| {g['single_requests_per_s']:,.0f} requests/s (p99 {g['single_p99_ms']:.0f} ms, "
            f"{g['single_rejected']} not accepted) |\n"
            f"| ingest alone, batches of {g['batch_size']:,} (target ≥ 50,000 events/s) "
            f"| {g['batch_events_per_s']:,.0f} events/s (p99 {g['batch_p99_ms']:.0f} ms, "
            f"{g['batch_rejected']} not accepted) |\n"
        )
        summary += (
            f" ingest_single={g['single_requests_per_s']:.0f}/s"
            f" ingest_batch={g['batch_events_per_s']:.0f}/s"
        )
    if args.latency_json and args.latency_json.exists():
        g = json.loads(args.latency_json.read_text())
        text += (
            f"| HTTP accept → both feed items, offered {g['offered_rate']:,} events/s "
            f"(achieved {g['achieved_rate']:,.0f}; matcher lateness 0; target p99 ≤ 500 ms) "
            f"| p50 {g['p50_ms']:.0f} ms, p99 {g['p99_ms']:.0f} ms, max {g['max_ms']:.0f} ms "
            f"({g['suggestions_delivered']}/{g['suggestions_expected']} suggestions) |\n"
        )
        summary += f" latency_p50={g['p50_ms']:.0f}ms latency_p99={g['p99_ms']:.0f}ms"
    text += (
        "\n| round | floor, one event per record | floor, arrays | pipeline | ratio |\n"
        "|---|---|---|---|---|\n"
    )
    for i, x in enumerate(r["rounds"], start=1):
        text += (
            f"| {i} | {x['floor_single']:,.0f} | {x['floor_arrays']:,.0f} "
            f"| {x['pipeline']:,.0f} | {x['ratio']:.3f} |\n"
        )
    with args.out.open("a") as f:
        f.write(text)
    print(text)
    print(
        f"pipeline_ratio={r['pipeline_ratio']:.3f} "
        f"(rounds {', '.join(format(x['ratio'], '.3f') for x in r['rounds'])}) "
        f"floor={max(r['floor_single'], r['floor_arrays']):.0f}/s "
        f"pipeline={r['pipeline']:.0f}/s matcher={r['matcher']:.0f}/s{summary}"
    )


if __name__ == "__main__":
    main()
