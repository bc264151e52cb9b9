"""Throughput, layer by layer, against a competent floor and a real peer (make bench).

All jobs read the same Higgs Twitter slice from topics of the same partition count on the
same broker, with the defaults a user gets unless a line says otherwise.

- **floor**: a competent bare aiokafka loop doing the job's minimum: consume, orjson, pair key,
  count per pair, produce a record when a pair reaches 3 (idempotent producer, ``acks=all``,
  sends not awaited one by one), commit after every poll. It runs on both layouts of the
  ``interactions`` topic. The floor is the run on one event per record keyed by pair: the
  pipeline's own input (raw deliveries, one per event). The run on arrays of 500, an input the
  pipeline does not get, is reported beside it.
- **where the time goes**: the pure core alone (``pairs.receive`` into a dict, no Kafka); the
  same floor loop with the pure core inside (``records.decode`` and ``pairs.receive``, states
  in a dict, suggestions produced: no state store, no changelog); the faust matcher (state in
  rocksdb with its changelog), on arrays and on one event per record; the pipeline.
- **peer** (``bench.peer``, Quix Streams, the ``bench`` extra): a stateful count per pair, and
  the project's own pure pair logic as a Quix stateful function. ``peer_ratio`` = the faust
  matcher ÷ Quix running the same logic on the same records: the array records the project
  writes (keyed by partition), in rounds; ``peer_ratio_single`` the same on one event per
  record keyed by pair.
- **pipeline**: the real normalizer and matcher from raw deliveries (one per event, as the
  webhooks write them), from the first delivery the normalizer committed to the last record
  the matcher committed.
- **scaling**: the matcher with 1 and then 2 processes on the arrays.

Floor and pipeline run in interleaved rounds (``--rounds``, 3), as do the peer and the
matcher: each round gives a ratio, and the headline ratio is the median. Every round's
figures are reported: on a shared machine one run of either can be 20% off.

Run: ``python -m bench.throughput --events 200000`` with Kafka and Redis up; the script
starts and stops its own workers (in namespaces of their own) so that the timing starts at
zero.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from redis.asyncio import Redis

from bench import current, git_commit
from schemas.events import Interaction
from schemas.suggestions import SUGGESTION_ADAPTER
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
from services.matcher.handlers import policy_from
from services.matcher.pairs import PairState, receive


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


def _consumer(settings: Settings, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=f"{topic}-{group}",
        max_poll_records=5000,
    )


#: what a bare loop does with one record's value: (events in it, records to produce)
Handle = Callable[[bytes], tuple[int, list[tuple[bytes, bytes]]]]


async def bare_loop(
    settings: Settings, topic: str, out: str, n: int, group: str, handle: Handle
) -> float:
    """Consume ``topic`` from the start, ``handle`` each record, produce what it returns
    (idempotent, ``acks=all``; a poll's sends awaited together), commit after every poll,
    until ``n`` events: events/s from the first poll that returned records."""
    consumer = _consumer(settings, topic, group)
    # the services' own producer: idempotent, acks=all, batches of up to 1 MiB
    producer = new_producer(settings, client_id=f"bench-{group}", linger_ms=5)
    await consumer.start()
    await producer.start()
    seen = 0
    start: float | None = None
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if start is None and batch:
                start = time.perf_counter()
            sends = []
            for recs in batch.values():
                for r in recs:
                    events, produced = handle(r.value or b"")
                    seen += events
                    for key, value in produced:
                        sends.append(await producer.send(out, key=key, value=value))
            if sends:
                await asyncio.gather(*sends)
            if batch:
                await consumer.commit()
        assert start is not None
        return n / (time.perf_counter() - start)
    finally:
        await consumer.stop()
        await producer.stop()


async def floor(settings: Settings, topic: str, out: str, n: int, group: str = "floor") -> float:
    """The competent bare loop doing the job's minimum: orjson, pair key, count per pair, a
    record when a pair reaches 3. Reads either layout."""
    counts: dict[bytes, int] = {}

    def count(raw: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
        value = orjson.loads(raw)
        items = value if isinstance(value, list) else (value,)
        produced = []
        for e in items:
            a, b = e["actor"], e["target"]
            key = (f"{a}|{b}" if a <= b else f"{b}|{a}").encode()
            c = counts[key] = counts.get(key, 0) + 1
            if c == 3:
                produced.append((key, orjson.dumps({"k": e["kind"], "n": c})))
        return len(items), produced

    return await bare_loop(settings, topic, out, n, group, count)


async def loop_with_core(settings: Settings, topic: str, out: str, n: int, group: str) -> float:
    """The floor's loop with the matcher's pure core inside: each record decoded as the
    matcher does (``records.decode``), each interaction into its pair's state
    (``pairs.receive``; states in a dict), the suggestions produced. No state store, no
    changelog: what the core costs in a competent loop."""
    policy = policy_from(settings.matcher)
    states: dict[str, PairState] = {}

    def apply(raw: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
        interactions = records.decode(raw).interactions
        produced = []
        for e in interactions:
            key = e.key
            states[key], made = receive(states.get(key), e, policy)
            produced += [(key.encode(), SUGGESTION_ADAPTER.dump_json(m)) for m in made]
        return len(interactions), produced

    return await bare_loop(settings, topic, out, n, group, apply)


def core_alone(settings: Settings, events: list[Interaction]) -> float:
    """The pure core alone: ``pairs.receive`` of every event into a dict of states, events
    already parsed, no Kafka. Events/s (the best of three passes)."""
    policy = policy_from(settings.matcher)
    best = 0.0
    for _ in range(3):
        states: dict[str, PairState] = {}
        started = time.perf_counter()
        for e in events:
            key = e.key
            states[key], _ = receive(states.get(key), e, policy)
        best = max(best, len(events) / (time.perf_counter() - started))
    return best


def peer(job: str, settings: Settings, topic: str, out: str, n: int, group: str) -> float | None:
    """Quix Streams running ``job`` (bench.peer) on ``topic``; None without quixstreams."""
    if importlib.util.find_spec("quixstreams") is None:
        return None
    done = subprocess.run(  # noqa: S603 - our own module
        [
            sys.executable,
            "-m",
            "bench.peer",
            job,
            "--topic",
            topic,
            "--out",
            out,
            "--group",
            group,
            "--events",
            str(n),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.peer {job} failed:\n{done.stderr[-3000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["events_per_s"])


#: The matcher flushes what it buffered for lateness once its input has been quiet this
#: long (wall clock). At the end of a finite replay that is pure waiting, not work: the bench
#: shortens it so that the measured time is processing time.
WORKER_ENV = {
    "REALCONNECT_MATCHER__IDLE_FLUSH_S": "0.5",
    "REALCONNECT_MATCHER__TICK_INTERVAL_S": "0.25",
}


def _worker(name: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own CLI
            [str(Path(sys.executable).parent / "realconnect"), "worker", name],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ | WORKER_ENV | (env or {}),
        )


async def _pending(redis: Redis, settings: Settings) -> int:
    """Pairs whose events the matcher still buffers (published each second)."""
    return sum(int(v) for v in (await redis.hvals(Keys(settings).pairs_pending)))


async def _circles_done(probe: LagProbe, t: Topics) -> bool:
    """Whether the circle stage has folded every ``person.activity`` record written so far."""
    lag = await probe.lag(t.person_activity, t.app_id("matcher"))
    return all(lag.committed.get(p, 0) >= end for p, end in lag.end.items())


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


def _ready_count(log: Path) -> int:
    """How many times the worker writing ``log`` finished a rebalance (its "Worker ready")."""
    try:
        return log.read_text(errors="replace").count("Worker ready")
    except FileNotFoundError:
        return 0


async def _until_ready(procs: list[tuple[subprocess.Popen[bytes], Path]], want: list[int]) -> None:
    """Until each worker has finished ``want[i]`` rebalances."""
    deadline = time.monotonic() + 180
    while any(_ready_count(log) < w for (_, log), w in zip(procs, want, strict=True)):
        for proc, log in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"the matcher exited: see {log}")
        if time.monotonic() > deadline:
            raise TimeoutError("the matchers did not get their partitions")
        await asyncio.sleep(0.2)


def _fresh_log(name: str) -> Path:
    log = Path(".run/logs") / name
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    return log


async def matcher_on(
    base: Settings,
    tag: str,
    recs: list[Record],
    n: int,
    timeout: float,
    processes: int = 1,
    *,
    circles: bool = True,
) -> float:
    """The matcher alone, ``processes`` workers of one group in a namespace of its own (new
    topics, group and state), on ``recs``: events/s from the first record committed to the
    last, and (``circles``, the default) until its circle stage has folded every
    ``person.activity`` record too. The workers are started one by one and hold their
    partitions (the last rebalance done) before the records are produced, so that neither
    start-up nor a rebalance is timed."""
    settings = Settings(namespace=f"{base.namespace}-{tag}")
    await ensure_topics(settings)
    t = Topics(settings)
    os.environ["REALCONNECT_NAMESPACE"] = settings.namespace
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    redis = new_redis(settings)
    try:
        for i in range(processes):
            log = _fresh_log(f"bench-matcher-{tag}-{i}.log")
            env = {
                "REALCONNECT_MATCHER__WEB_PORT": str(6200 + i),
                # each process its own state directory (rocksdb locks its files)
                "REALCONNECT_MATCHER__DATA_DIR": str(Path(".run/bench/matcher") / f"{tag}-{i}"),
                "REALCONNECT_MATCHER__CIRCLES": "true" if circles else "false",
            }
            procs.append((_worker("matcher", log, env), log))
            # each new member makes every member rebalance once more
            await _until_ready(procs, [len(procs) - k for k in range(len(procs))])
        await load(settings, t.interactions, recs)
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
                    and matched >= len(recs)
                    and await _pending(redis, settings) == 0
                    and (not circles or await _circles_done(probe, t))
                ):
                    # records, not events, are committed: scale by events per record
                    return n * (1 - first[1] / len(recs)) / (time.perf_counter() - first[0])
                await asyncio.sleep(0.1)
            raise TimeoutError("the matcher did not finish")
    finally:
        await redis.aclose()
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            proc.wait(timeout=60)
        await delete_namespace_topics(base.kafka.bootstrap_servers, [settings.namespace])
        for i in range(processes):
            shutil.rmtree(Path(".run/bench/matcher") / f"{tag}-{i}", ignore_errors=True)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base = Settings()
    events = list(higgs.interactions(args.data_dir, limit=args.events))
    n = len(events)
    per_record = base.kafka.interactions_per_record
    parts = base.kafka.partitions
    ns = base.namespace

    # the same events on both layouts of the interactions topic
    t = Topics(base)
    single_in, arrays_in, out = t.name("bench.single"), t.name("bench.arrays"), t.name("bench.out")
    await ensure_topics(base, [single_in, arrays_in, out])
    singles = records.encode(events, parts, 1)
    # arrays as the project writes them, keyed by their partition: the matcher ignores an
    # array's key, and Quix Streams keeps state under a record's key
    arrays = [
        Record(f"p{r.partition}".encode(), r.value, r.partition, r.count)
        for r in records.encode(events, parts, per_record)
    ]
    await load(base, single_in, singles)
    await load(base, arrays_in, arrays)
    raw = [
        records.Record(e.event_id.encode(), e.model_dump_json().encode(), None, 1) for e in events
    ]
    headers = [("source", b"generic"), ("received_at", b"2026-01-01T00:00:00+00:00")]
    fig: dict[str, Any] = {"events": n, "per_record": per_record}
    namespaces = [ns, f"changelog__{ns}"]
    try:
        # where the time goes, without a state store
        fig["core"] = core_alone(base, events)
        print(f"pure core alone: {fig['core']:,.0f}/s", flush=True)
        fig["loop_core"] = await loop_with_core(base, arrays_in, out, n, "loop-core")
        print(f"floor loop + pure core: {fig['loop_core']:,.0f}/s", flush=True)
        fig["quix_count"] = peer("count", base, single_in, out, n, f"{ns}.quix-count")
        if fig["quix_count"] is not None:
            print(f"Quix Streams, count per pair: {fig['quix_count']:,.0f}/s", flush=True)

        # 1. the floor and the pipeline, interleaved
        rounds: list[dict[str, float]] = []
        for i in range(args.rounds):
            floor_single = await floor(base, single_in, out, n, group=f"floor-{i}")
            floor_arrays = await floor(base, arrays_in, out, n, group=f"floor-{i}")
            # normalizer + matcher from raw deliveries, in a namespace of this round: new
            # topics, new consumer groups, new state
            pipe_settings = Settings(namespace=f"{ns}-pipe{i}")
            namespaces.append(pipe_settings.namespace)
            await ensure_topics(pipe_settings)
            await load(pipe_settings, Topics(pipe_settings).raw("generic"), raw, headers)
            os.environ["REALCONNECT_NAMESPACE"] = pipe_settings.namespace
            pipe_rate = await pipeline(pipe_settings, n, timeout=args.timeout)
            await delete_namespace_topics(base.kafka.bootstrap_servers, [pipe_settings.namespace])
            floor_rate = floor_single  # the pipeline's input layout
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

        # 2. the peer: Quix Streams and the faust matcher, the same logic on the same records:
        # the arrays the project writes (keyed by partition, so that Quix can keep state),
        # in rounds; then once on one event per record keyed by pair
        peer_rounds: list[dict[str, float]] = []
        for i in range(args.rounds):
            quix = peer("pairs", base, arrays_in, out, n, f"{ns}.quix-pairs-{i}")
            matcher = await matcher_on(base, f"arrays{i}", arrays, n, args.timeout)
            namespaces.append(f"{ns}-arrays{i}")
            peer_rounds.append({"matcher": matcher} | ({} if quix is None else {"quix": quix}))
            print(
                f"peer round {i + 1}/{args.rounds}, arrays: Quix Streams {_rate(quix)}, "
                f"faust matcher {matcher:,.0f} events/s",
                flush=True,
            )
        quix_single = peer("pairs", base, single_in, out, n, f"{ns}.quix-pairs-single")
        fig["matcher_single"] = await matcher_on(base, "single", singles, n, args.timeout)
        fig["quix_single"] = quix_single
        namespaces.append(f"{ns}-single")
        print(
            f"one event per record: Quix Streams {_rate(quix_single)}, faust matcher "
            f"{fig['matcher_single']:,.0f} events/s",
            flush=True,
        )

        # the circle stage's cost: the same arrays once more with it off (a setting)
        fig["matcher_no_circles"] = await matcher_on(
            base, "arrays-nocircles", arrays, n, args.timeout, circles=False
        )
        namespaces.append(f"{ns}-arrays-nocircles")
        print(
            f"matcher on arrays without the circle stage: {fig['matcher_no_circles']:,.0f}/s",
            flush=True,
        )

        # 3. the matcher with two processes on the arrays (1 process: the peer rounds)
        fig["matcher_2"] = await matcher_on(base, "arrays2p", arrays, n, args.timeout, 2)
        namespaces.append(f"{ns}-arrays2p")
        print(f"matcher on arrays, 2 processes: {fig['matcher_2']:,.0f}/s", flush=True)
    finally:
        await delete_namespace_topics(base.kafka.bootstrap_servers, namespaces)

    mid = sorted(rounds, key=lambda r: r["ratio"])[(len(rounds) - 1) // 2]
    for r in peer_rounds:
        if "quix" in r:
            r["ratio"] = r["matcher"] / r["quix"]
    # the round with the median ratio (or the median matcher without the peer)
    order = "ratio" if all("ratio" in r for r in peer_rounds) else "matcher"
    peer_mid = sorted(peer_rounds, key=lambda r: r[order])[(len(peer_rounds) - 1) // 2]
    single_ratio = None if quix_single is None else fig["matcher_single"] / quix_single
    return fig | {
        "rounds": rounds,
        "peer_rounds": peer_rounds,
        "floor_single": mid["floor_single"],
        "floor_arrays": mid["floor_arrays"],
        "floor": mid["floor_single"],
        "pipeline": mid["pipeline"],
        "pipeline_ratio": statistics.median(r["ratio"] for r in rounds),
        "matcher": peer_mid["matcher"],
        "quix_pairs": peer_mid.get("quix"),
        "peer_ratio": peer_mid.get("ratio"),
        "peer_ratio_single": single_ratio,
    }


def _rate(v: float | None) -> str:
    return "not measured (quixstreams not installed)" if v is None else f"{v:,.0f} events/s"


def report(r: dict[str, Any], ingest: dict[str, Any] | None, latency: dict[str, Any] | None) -> str:
    """The run's section for docs/benchmarks-history.md."""
    floor_rate = r["floor"]
    text = (
        f"\n### Throughput — {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
        f"commit `{git_commit()}`\n\n"
        f"{r['events']:,} Higgs Twitter interactions on one broker, {Settings().kafka.partitions} "
        f"partitions; {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}. Default settings except where a line says otherwise.\n\n"
        "| layer | events/s | ÷ floor |\n|---|---|---|\n"
        f"| floor: competent bare aiokafka loop (count per pair, emit at 3), one event per "
        f"record | {r['floor_single']:,.0f} | |\n"
        f"| floor: the same loop on array records | {r['floor_arrays']:,.0f} | |\n"
        f"| pure core alone (`pairs.receive` into a dict, no Kafka) | {r['core']:,.0f} "
        f"| {r['core'] / floor_rate:.3f} |\n"
        f"| floor loop + pure core (no state store, no changelog), arrays | "
        f"{r['loop_core']:,.0f} | {r['loop_core'] / floor_rate:.3f} |\n"
        f"| Quix Streams 3: stateful count per pair, emit at 3, one event per record | "
        f"{_rate(r['quix_count'])} | |\n"
        f"| Quix Streams 3 running the project's pure pair logic, array records | "
        f"{_rate(r['quix_pairs'])} | |\n"
        f"| faust matcher, array records (production layout), 1 process | {r['matcher']:,.0f} "
        f"| {r['matcher'] / floor_rate:.3f} |\n"
        f"| faust matcher, array records, 2 processes | {r['matcher_2']:,.0f} "
        f"| {r['matcher_2'] / floor_rate:.3f} |\n"
        f"| Quix Streams 3 running the project's pure pair logic, one event per record | "
        f"{_rate(r['quix_single'])} | |\n"
        f"| faust matcher, one event per record | "
        f"{r['matcher_single']:,.0f} | {r['matcher_single'] / floor_rate:.3f} |\n"
        f"| pipeline: normalizer + matcher from raw deliveries | {r['pipeline']:,.0f} "
        f"| **{r['pipeline_ratio']:.3f}** (median of rounds) |\n"
    )
    if r["peer_ratio"] is not None:
        text += (
            "\n**peer_ratio** = faust matcher ÷ Quix Streams, the same pure logic on the same "
            f"array records, median of rounds: **{r['peer_ratio']:.3f}** (target ≥ 1.5). On "
            f"one event per record: {r['peer_ratio_single']:.3f}.\n"
        )
    text += (
        f"\n**pipeline_ratio** = pipeline ÷ that round's floor (one event per record, the "
        "pipeline's input layout), median of rounds: "
        f"**{r['pipeline_ratio']:.3f}** (target ≥ 0.25).\n"
    )
    if ingest:
        text += (
            f"\nIngest alone ({ingest.get('ingest_workers', 1)} uvicorn processes): single-event "
            f"requests {ingest['single_requests_per_s']:,.0f}/s (p99 "
            f"{ingest['single_p99_ms']:.0f} ms, {ingest['single_rejected']} not accepted); "
            f"batches of {ingest['batch_size']:,}: {ingest['batch_events_per_s']:,.0f} events/s "
            f"(p99 {ingest['batch_p99_ms']:.0f} ms, {ingest['batch_rejected']} not accepted).\n"
        )
    if latency:
        text += f"\nHTTP accept → both feed items: {_latency(latency)}.\n"
    text += (
        "\n| round | floor, one per record | floor, arrays | pipeline | ratio |\n"
        "|---|---|---|---|---|\n"
    )
    for i, x in enumerate(r["rounds"], start=1):
        text += (
            f"| {i} | {x['floor_single']:,.0f} | {x['floor_arrays']:,.0f} "
            f"| {x['pipeline']:,.0f} | {x['ratio']:.3f} |\n"
        )
    text += (
        "\n| peer round (arrays) | Quix Streams, pure pair logic | faust matcher | ratio |\n"
        "|---|---|---|---|\n"
    )
    for i, x in enumerate(r["peer_rounds"], start=1):
        ratio = x.get("ratio")
        text += (
            f"| {i} | {_rate(x.get('quix'))} | {x['matcher']:,.0f} "
            f"| {'' if ratio is None else format(ratio, '.3f')} |\n"
        )
    return text


def _latency(g: dict[str, Any]) -> str:
    lateness = g.get("lateness_s")
    setting = "default settings" if lateness is None else f"matcher lateness {lateness:g} s"
    return (
        f"offered {g['offered_rate']:,} events/s (achieved {g['achieved_rate']:,.0f}; {setting}): "
        f"p50 {g['p50_ms']:,.0f} ms, p99 {g['p99_ms']:,.0f} ms, max {g['max_ms']:,.0f} ms "
        f"({g['suggestions_delivered']}/{g['suggestions_expected']} suggestions)"
    )


def current_rows(
    r: dict[str, Any], ingest: dict[str, Any] | None, latency: dict[str, Any] | None
) -> list[current.Row]:
    how = "`make bench`, bench/throughput.py"
    rows = [
        current.Row(
            "pipeline_ratio",
            "≥ 0.25",
            f"**{r['pipeline_ratio']:.3f}** (pipeline {r['pipeline']:,.0f} ÷ floor "
            f"{r['floor']:,.0f} events/s)",
            f"{how}: normalizer + matcher from raw deliveries ÷ the competent bare aiokafka "
            "loop, median of 3 interleaved rounds",
        ),
        current.Row(
            "peer_ratio",
            "≥ 1.5",
            "not measured (quixstreams not installed)"
            if r["peer_ratio"] is None
            else f"**{r['peer_ratio']:.3f}** (matcher {r['matcher']:,.0f} ÷ Quix "
            f"{r['quix_pairs']:,.0f} events/s); one event per record: "
            f"{r['peer_ratio_single']:.3f} ({r['matcher_single']:,.0f} ÷ "
            f"{r['quix_single']:,.0f})",
            f"{how}: faust matcher ÷ Quix Streams running the same pure pair logic on the "
            "same array records (median of 3 rounds), and on one event per record (1 round)",
        ),
        current.Row(
            "matcher, 1 → 2 processes",
            "scales",
            f"{r['matcher']:,.0f} → {r['matcher_2']:,.0f} events/s "
            f"(×{r['matcher_2'] / r['matcher']:.2f})",
            f"{how}: array records, one and two worker processes of one group (2 cores, the "
            "broker on the same machine)",
        ),
        current.Row(
            "circle stage (issue 38), cost per event",
            "must not halve the pipeline",
            f"{1e6 / r['matcher'] - 1e6 / r['matcher_no_circles']:+.1f} µs per event: the "
            f"matcher {r['matcher']:,.0f} events/s with it (default), "
            f"{r['matcher_no_circles']:,.0f} without (`MATCHER__CIRCLES=false`), "
            f"×{r['matcher'] / r['matcher_no_circles']:.2f}",
            f"{how}: the matcher on the arrays, until every interaction and every "
            "person.activity record is committed; without it, one run after the peer rounds",
        ),
        current.Row(
            "pure core alone",
            "",
            f"{r['core']:,.0f} events/s",
            f"{how}: `pairs.receive` into a dict, events already parsed",
        ),
    ]
    if ingest:
        rows += [
            current.Row(
                "ingest, single-event requests",
                "≥ 5,000 requests/s",
                f"{ingest['single_requests_per_s']:,.0f} requests/s (p99 "
                f"{ingest['single_p99_ms']:.0f} ms)",
                f"`make bench`, bench/ingest_load.py: wrk, 64 connections, ingest alone "
                f"({ingest.get('ingest_workers', 1)} uvicorn processes)",
            ),
            current.Row(
                "ingest, batches",
                "≥ 50,000 events/s",
                f"{ingest['batch_events_per_s']:,.0f} events/s (batches of "
                f"{ingest['batch_size']:,})",
                "`make bench`, bench/ingest_load.py",
            ),
        ]
    if latency:
        rows.append(
            current.Row(
                "accept → feed latency, p99",
                "≤ 2 s at 5,000 events/s, default settings",
                f"**{latency['p99_ms']:,.0f} ms** (p50 {latency['p50_ms']:,.0f} ms, "
                f"{latency['suggestions_delivered']}/{latency['suggestions_expected']} "
                "suggestions)",
                f"`make bench`, bench/latency.py: {_latency(latency)}",
            )
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument(
        "--rounds", type=int, default=3, help="interleaved floor/pipeline and peer/matcher runs"
    )
    ap.add_argument("--ingest-json", type=Path, help="figures of bench.ingest_load to include")
    ap.add_argument("--latency-json", type=Path, help="figures of bench.latency to include")
    ap.add_argument("--print-only", action="store_true", help="leave docs/ as it is")
    args = ap.parse_args()
    r = asyncio.run(run(args))
    ingest = latency = None
    if args.ingest_json and args.ingest_json.exists():
        ingest = json.loads(args.ingest_json.read_text())
    if args.latency_json and args.latency_json.exists():
        latency = json.loads(args.latency_json.read_text())
    text = report(r, ingest, latency)
    if not args.print_only:
        current.append_history(text)
        current.update(current_rows(r, ingest, latency))
    print(text)
    peer_ratio = "n/a" if r["peer_ratio"] is None else f"{r['peer_ratio']:.3f}"
    if r["peer_ratio_single"] is not None:
        peer_ratio += f" peer_ratio_single={r['peer_ratio_single']:.3f}"
    p99 = "n/a" if latency is None else f"{latency['p99_ms']:.0f}"
    summary = (
        f"pipeline_ratio={r['pipeline_ratio']:.3f} peer_ratio={peer_ratio} p99_ms={p99} "
        f"floor={r['floor']:.0f}/s pipeline={r['pipeline']:.0f}/s "
        f"matcher={r['matcher']:.0f}/s matcher_2p={r['matcher_2']:.0f}/s "
        f"matcher_no_circles={r['matcher_no_circles']:.0f}/s "
        f"core={r['core']:.0f}/s"
    )
    if ingest:
        summary += (
            f" ingest_single={ingest['single_requests_per_s']:.0f}/s"
            f" ingest_batch={ingest['batch_events_per_s']:.0f}/s"
        )
    print(summary)


if __name__ == "__main__":
    main()
