"""Throughput of the pipeline against the bare Kafka client, on the same events (make bench).

- **floor**: a bare aiokafka loop that consumes the events, parses each (orjson), counts per
  pair and produces one record per event: what the Kafka client itself can do here.
- **pipeline**: the real matcher (faust, rocksdict table, pure pair logic) on the same events,
  from its first committed offset to its last.

Both read the same Higgs Twitter slice from a topic of the same partition count on the same
broker; ``pipeline_ratio`` = pipeline events/s ÷ floor events/s.

Run: ``python -m bench.throughput --events 200000`` with the stack up, the matcher STOPPED
(this script starts and stops its own matcher so that the timing starts at zero).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.common.kafka import Topics, end_offsets, ensure_topics, group_lag, new_producer
from services.common.settings import Settings
from services.datasets import higgs


async def load(settings: Settings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = new_producer(settings, client_id="bench-load")
    await producer.start()
    try:
        batch = []
        for key, value in records:
            batch.append(await producer.send(topic, key=key, value=value))
            if len(batch) >= 10_000:
                await asyncio.gather(*batch)
                batch.clear()
        await asyncio.gather(*batch)
    finally:
        await producer.stop()


async def floor(settings: Settings, topic: str, out: str, n: int) -> float:
    """Bare aiokafka: consume -> parse -> count per pair -> produce, events/s."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=f"{topic}-floor",
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
            for records in batch.values():
                for r in records:
                    e = orjson.loads(r.value)
                    counts[r.key] += 1
                    pending.append(
                        await producer.send(
                            out, key=r.key, value=orjson.dumps({"k": e["kind"], "n": counts[r.key]})
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


async def pipeline(settings: Settings, n: int, timeout: float) -> float:
    """The real matcher from first to last committed offset, events/s."""
    t = Topics(settings)
    group = t.app_id("matcher")
    bootstrap = settings.kafka.bootstrap_servers
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "realconnect"),
        "worker",
        "matcher",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lag = await group_lag(bootstrap, t.interactions, group)
            done = sum(min(lag.committed.get(p, 0), e) for p, e in lag.end.items())
            now = time.perf_counter()
            if first is None and done > 0:
                first = (now, done)
            if done >= n and first is not None:
                return (done - first[1]) / (now - first[0])
            await asyncio.sleep(0.2)
        raise TimeoutError("the matcher did not finish")
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=60)


async def run(args: argparse.Namespace) -> dict[str, float]:
    settings = Settings()
    await ensure_topics(settings)
    t = Topics(settings)
    events = list(higgs.interactions(args.data_dir, limit=args.events))
    records = [(e.key.encode(), e.model_dump_json().encode()) for e in events]
    floor_in, floor_out = t.name("bench.floor.in"), t.name("bench.floor.out")
    await ensure_topics(settings, [floor_in, floor_out])
    await load(settings, floor_in, records)
    floor_rate = await floor(settings, floor_in, floor_out, len(records))
    await load(settings, t.interactions, records)
    assert sum(
        (await end_offsets(settings.kafka.bootstrap_servers, t.interactions)).values()
    ) >= len(records)
    pipe_rate = await pipeline(settings, len(records), timeout=args.timeout)
    return {
        "events": len(records),
        "floor": floor_rate,
        "pipeline": pipe_rate,
        "pipeline_ratio": pipe_rate / floor_rate,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = ap.parse_args()
    r = asyncio.run(run(args))
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - read-only git
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    text = (
        f"\n### Throughput — {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
        f"commit `{commit}`\n\n"
        f"{r['events']:,} Higgs Twitter interactions, same broker, same partition count.\n\n"
        f"| measure | events/s |\n|---|---|\n"
        f"| floor: bare aiokafka consume → parse → count per pair → produce | {r['floor']:,.0f} |\n"
        f"| pipeline: the faust matcher, first to last committed offset | {r['pipeline']:,.0f} |\n"
        f"| **pipeline_ratio** (target ≥ 0.25) | **{r['pipeline_ratio']:.3f}** |\n"
    )
    with args.out.open("a") as f:
        f.write(text)
    print(text)
    print(
        f"pipeline_ratio={r['pipeline_ratio']:.3f} "
        f"floor={r['floor']:.0f}/s pipeline={r['pipeline']:.0f}/s"
    )


if __name__ == "__main__":
    main()
