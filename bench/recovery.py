"""How long a matcher takes to get its pairs back (make bench-recovery).

For each size (1 M and 10 M pairs by default) the pairs table's changelog is filled with
that many pair states (each a real state: six replies folded by the pure core, renamed per
pair) and the per-partition pair counts, as a matcher would have left them. Then:

1. **cold restore**: a matcher starts on an empty state directory (a new machine) and
   restores every partition from the changelog; the time runs until it publishes the full
   pair count (it reads each partition's count from its table once restored);
2. **failover with a warm standby**: a second matcher joins; faust keeps a standby copy of
   the other worker's partitions (``table_standby_replicas``, 1 by default) up to date from
   the changelog. The first is SIGKILLed; the time runs from the kill until a new pair in
   every partition has been applied (this includes the session timeout, 10 s, after which
   the group moves the dead worker's partitions);
3. **failover without one**: two fresh workers with standbys off restore their halves; one
   is SIGKILLed, and the survivor must restore the dead worker's partitions first.

Before each kill, a new pair in every partition shows that the workers running then hold every
partition, restored: the pair counts in Redis may still be those of a worker killed earlier
(the first version of this bench trusted them, and at 10 M pairs measured a failover that had
to restore both halves, cut off by its 300 s limit, as a stall).

Run: ``python -m bench.recovery --pairs 1000000 --pairs 10000000`` with Kafka and Redis up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import git_commit
from bench.memory import tracked
from schemas.events import Interaction
from services.common import records
from services.common.kafka import (
    Topics,
    delete_namespace_topics,
    ensure_topics,
    new_producer,
)
from services.common.redis import Keys, new_redis
from services.common.settings import Settings
from services.matcher.handlers import policy_from
from services.matcher.pairs import flush, receive
from services.matcher.store import PAIR_COUNT_PREFIX

START = datetime(2026, 1, 1, tzinfo=UTC)
LOG = Path(".run/logs/bench-recovery.log")


def template(settings: Settings) -> bytes:
    """A pair state as the matcher keeps it after a short conversation (six replies)."""
    policy = policy_from(settings.matcher)
    state = None
    for i in range(6):
        actor, target = ("x:a", "x:b") if i % 2 == 0 else ("x:b", "x:a")
        e = Interaction(
            source="bench",
            event_id=f"t{i}",
            kind="reply",
            actor=actor,
            target=target,
            occurred_at=START + timedelta(hours=5 * i),
            text="good to hear from you, how is the new job going?",
        )
        state, _ = receive(state, e, policy)
    assert state is not None
    state, _ = flush(state, None, policy)
    return state.encode()


async def fill_changelog(settings: Settings, pairs: int) -> str:
    """The pairs table's changelog with ``pairs`` states and each partition's pair count."""
    from services.matcher.pairs import PairState

    changelog = f"{Topics(settings).app_id('matcher')}-pairs-changelog"
    await ensure_topics(settings, names=[changelog], compacted=[changelog])
    base = PairState.decode(template(settings))
    n = settings.kafka.partitions
    counts = [0] * n
    producer = new_producer(settings, client_id="bench-recovery", linger_ms=20)
    await producer.start()
    try:
        for start in range(0, pairs, 50_000):
            futures = []
            for i in range(start, min(start + 50_000, pairs)):
                a, b = f"rec:a{i:09d}", f"rec:b{i:09d}"
                key = f"{a}|{b}".encode()
                p = records.partition_for(key, n)
                counts[p] += 1
                value = replace(base, a=a, b=b).encode()
                futures.append(await producer.send(changelog, key=key, value=value, partition=p))
            await asyncio.gather(*futures)
            print(f"  changelog: {min(start + 50_000, pairs):,} of {pairs:,}", flush=True)
        for p, count in enumerate(counts):
            key = PAIR_COUNT_PREFIX + str(p).encode()
            await producer.send_and_wait(changelog, key=key, value=str(count).encode(), partition=p)
    finally:
        await producer.stop()
    return changelog


def start_matcher(
    settings: Settings, data: Path, web_port: int, standby: int = 1
) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "REALCONNECT_NAMESPACE": settings.namespace,
        "REALCONNECT_MATCHER__DATA_DIR": str(data),
        "REALCONNECT_MATCHER__WEB_PORT": str(web_port),
        "REALCONNECT_MATCHER__STANDBY_REPLICAS": str(standby),
    }
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("ab") as log:
        return subprocess.Popen(  # noqa: S603 - our own CLI
            [str(Path(sys.executable).parent / "realconnect"), "worker", "matcher"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def until_tracked(settings: Settings, want: int, timeout: float) -> float:
    """Seconds until the matchers publish ``want`` pairs tracked."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await tracked(settings) >= want:
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    raise TimeoutError(f"{want:,} pairs not tracked after {timeout:.0f} s")


async def failover(settings: Settings, want: int, killed: float, limit: float) -> float:
    """Seconds from the kill until every partition applied its new pair; inf if that did
    not happen within ``limit`` (a partition that never resumes is a stall, not a time)."""
    try:
        await until_tracked(settings, want, limit)
    except TimeoutError:
        print(f"  not recovered within {limit:.0f} s: stalled", flush=True)
        return float("inf")
    return time.monotonic() - killed


async def new_pair_in_every_partition(settings: Settings, tag: str) -> int:
    """One interaction opening a new pair in each partition; returns how many."""
    n = settings.kafka.partitions
    found: dict[int, Interaction] = {}
    i = 0
    while len(found) < n:
        e = Interaction(
            source="bench",
            event_id=f"{tag}{i}",
            kind="reply",
            actor=f"new:{tag}a{i}",
            target=f"new:{tag}b{i}",
            occurred_at=START + timedelta(days=30),
            text="good to hear from you, how is the new job going?",
        )
        found.setdefault(records.partition_for(e.key.encode(), n), e)
        i += 1
    producer = new_producer(settings, client_id="bench-recovery")
    await producer.start()
    try:
        for p, e in found.items():
            await producer.send_and_wait(
                Topics(settings).interactions,
                key=e.key.encode(),
                value=e.model_dump_json().encode(),
                partition=p,
            )
    finally:
        await producer.stop()
    return n


def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=120)


async def measure(pairs: int, timeout: float, failover_s: float) -> dict[str, float]:
    base = Settings()
    settings = Settings(namespace=f"{base.namespace or 'bench'}-rec{pairs}")
    work = Path(tempfile.mkdtemp(prefix="bench-recovery-"))
    procs: list[subprocess.Popen[bytes]] = []
    row: dict[str, float] = {"pairs": pairs}
    # a rerun (or a run stopped before its cleanup) starts from empty topics and counters
    await delete_namespace_topics(base.kafka.bootstrap_servers, [settings.namespace])
    await ensure_topics(settings)
    redis, keys = new_redis(settings), Keys(settings)
    await redis.delete(keys.pairs_tracked, keys.pairs_pending, keys.matcher_counts)  # a rerun
    await redis.aclose()
    try:
        started = time.monotonic()
        await fill_changelog(settings, pairs)
        row["fill_s"] = time.monotonic() - started

        # 1. cold: a new machine restores everything
        a = start_matcher(settings, work / "a", 6170)
        procs.append(a)
        row["cold_restore_s"] = await until_tracked(settings, pairs, timeout)
        print(f"  cold restore: {row['cold_restore_s']:.1f} s", flush=True)

        # A failover must not be mistaken for a stall: give it twice a cold restore
        limit = max(failover_s, 2 * row["cold_restore_s"])
        total = pairs

        async def all_partitions_live(tag: str) -> None:
            """Until the workers running now have restored every partition: a new pair in
            each is counted only by a worker that holds its partition, restored (the pair
            counts in Redis may still be those a killed worker published)."""
            nonlocal total
            total += await new_pair_in_every_partition(settings, tag)
            await until_tracked(settings, total, timeout)

        # 2. a second worker with a warm standby of the first's partitions, then the kill
        b = start_matcher(settings, work / "b", 6171)
        procs.append(b)
        await asyncio.sleep(15)  # the rebalance moves half the partitions to b
        await all_partitions_live("r")  # b restored its half
        await asyncio.sleep(max(15.0, row["cold_restore_s"]))  # and its standbys caught up
        kill(a)
        killed = time.monotonic()
        total += await new_pair_in_every_partition(settings, "w")
        row["failover_standby_s"] = await failover(settings, total, killed, limit)
        print(f"  failover with a standby: {row['failover_standby_s']:.1f} s", flush=True)

        # 3. the same with standbys off (REALCONNECT_MATCHER__STANDBY_REPLICAS=0): two fresh
        # workers restore their halves, one is killed, the survivor restores the other half
        kill(b)
        c = start_matcher(settings, work / "c", 6172, standby=0)
        d = start_matcher(settings, work / "d", 6173, standby=0)
        procs += [c, d]
        await asyncio.sleep(15)
        await all_partitions_live("s")  # c and d restored their halves
        await asyncio.sleep(5)
        kill(c)
        killed = time.monotonic()
        total += await new_pair_in_every_partition(settings, "c")
        row["failover_cold_s"] = await failover(settings, total, killed, limit)
        print(f"  failover without one: {row['failover_cold_s']:.1f} s", flush=True)
    finally:
        for proc in procs:
            kill(proc, signal.SIGTERM)
        await delete_namespace_topics(base.kafka.bootstrap_servers, [settings.namespace])
        shutil.rmtree(work, ignore_errors=True)
    return row


def seconds(value: float) -> str:
    return "stalled (never resumed)" if value == float("inf") else f"{value:.0f} s"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, action="append")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument(
        "--failover-timeout", type=float, default=300, help="at least twice the cold restore"
    )
    ap.add_argument("--out", type=Path, default=Path("docs/reliability.md"))
    args = ap.parse_args()
    rows = []
    for pairs in args.pairs or [1_000_000, 10_000_000]:
        print(f"== {pairs:,} pairs", flush=True)
        rows.append(asyncio.run(measure(pairs, args.timeout, args.failover_timeout)))
    text = (
        f"\n### Recovery of the matcher's state — {time.strftime('%Y-%m-%d %H:%M', time.gmtime())}"
        f" UTC, commit `{git_commit()}`\n\n"
        f"`make bench-recovery` ({os.cpu_count()} cores, one local broker, "
        f"{Settings().kafka.partitions} partitions, default settings).\n\n"
        "| pairs | cold restore (new machine) | failover, warm standby | "
        "failover, no standby |\n|---|---|---|---|\n"
        + "".join(
            f"| {r['pairs']:,.0f} | {seconds(r['cold_restore_s'])} | "
            f"{seconds(r['failover_standby_s'])} | {seconds(r['failover_cold_s'])} |\n"
            for r in rows
        )
        + "\nFailover times include the session timeout (10 s) before the group moves the "
        "dead worker's partitions.\n"
    )
    # before the latest make reliability table, which each reliability run rewrites
    marker = "<!-- reliability-results -->"
    doc = args.out.read_text() if args.out.exists() else ""
    if marker in doc:
        before, after = doc.split(marker, 1)
        args.out.write_text(before.rstrip("\n") + "\n" + text + "\n" + marker + after)
    else:
        args.out.write_text(doc + text)
    print(text)


if __name__ == "__main__":
    main()
