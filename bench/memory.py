"""Matcher memory as tracked pairs grow (make bench-memory): RSS must stay flat.

Feeds one matcher worker (rocksdict store, default settings) with interactions that each
open a new pair, as arrays of 500, and at every checkpoint waits until everything is
applied, then samples the worker's resident memory (``/proc/<pid>/status`` VmRSS), the size
of its state directory on disk and the pairs tracked it reports. The pair states live in
rocksdb; what the worker holds in memory is bounded by settings (decoded-state LRU, faust's
key index LRU, the lateness buffer), not by the number of pairs.

Run: ``python -m bench.memory --pairs 10000000 --every 1000000`` with Kafka and Redis up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import current, git_commit
from schemas.events import Interaction
from services.common import records
from services.common.kafka import (
    Topics,
    delete_namespace_topics,
    ensure_topics,
    group_lag,
    new_producer,
)
from services.common.redis import Keys, new_redis
from services.common.settings import Settings

START = datetime(2026, 1, 1, tzinfo=UTC)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


async def caught_up(settings: Settings, timeout: float) -> None:
    t = Topics(settings)
    redis = new_redis(settings)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            lag = await group_lag(
                settings.kafka.bootstrap_servers, t.interactions, t.app_id("matcher")
            )
            behind = sum(e - lag.committed.get(p, 0) for p, e in lag.end.items())
            pending = sum(int(v) for v in await redis.hvals(Keys(settings).pairs_pending))
            if behind == 0 and pending == 0:
                return
            await asyncio.sleep(1)
        raise TimeoutError("the matcher did not catch up")
    finally:
        await redis.aclose()


async def tracked(settings: Settings) -> int:
    redis = new_redis(settings)
    try:
        return sum(int(v) for v in await redis.hvals(Keys(settings).pairs_tracked))
    finally:
        await redis.aclose()


def start_matcher(env: dict[str, str]) -> subprocess.Popen[bytes]:
    with Path(".run/logs/bench-memory-matcher.log").open("ab") as log:
        return subprocess.Popen(  # noqa: S603 - our own CLI
            [str(Path(sys.executable).parent / "realconnect"), "worker", "matcher"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def run(args: argparse.Namespace) -> list[dict[str, float]]:
    base = Settings()
    settings = Settings(namespace=f"{base.namespace or 'bench'}-mem")
    await ensure_topics(settings)
    data = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    env = os.environ | {
        "REALCONNECT_NAMESPACE": settings.namespace,
        "REALCONNECT_MATCHER__DATA_DIR": str(data),
        "REALCONNECT_MATCHER__IDLE_FLUSH_S": "1",
    }
    proc = start_matcher(env)
    producer = new_producer(settings, client_id="bench-memory")
    await producer.start()
    rows = []
    topic = Topics(settings).interactions
    started = time.monotonic()
    try:
        sent = 0
        while sent < args.pairs:
            chunk = [
                Interaction(
                    source="bench",
                    event_id=f"m{i}",
                    kind="reply",
                    actor=f"mem:a{i}",
                    target=f"mem:b{i}",
                    occurred_at=START + timedelta(seconds=i // 50),
                    text="good to hear from you, how is the new job going?",
                )
                for i in range(sent, min(sent + 50_000, args.pairs))
            ]
            futures = [
                await producer.send(topic, value=r.value, partition=r.partition)
                for r in records.encode(chunk, settings.kafka.partitions, 500)
            ]
            await asyncio.gather(*futures)
            sent += len(chunk)
            if sent % args.every == 0 or sent == args.pairs:
                await caught_up(settings, timeout=3600)
                await asyncio.sleep(2)  # one more publication of the counts
                row = {
                    "pairs_sent": sent,
                    "pairs_tracked": await tracked(settings),
                    "rss_mb": rss_mb(proc.pid),
                    "disk_mb": disk_mb(data),
                    "elapsed_s": time.monotonic() - started,
                }
                rows.append(row)
                print(row, flush=True)
    finally:
        await producer.stop()
        proc.terminate()
        proc.wait(timeout=120)
        await delete_namespace_topics(base.kafka.bootstrap_servers, [settings.namespace])
        shutil.rmtree(data, ignore_errors=True)  # up to a GB of state at 10M pairs
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=10_000_000)
    ap.add_argument("--every", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=current.HISTORY)
    args = ap.parse_args()
    rows = asyncio.run(run(args))
    first = next((r for r in rows if r["pairs_sent"] >= min(1_000_000, args.pairs)), rows[0])
    last = rows[-1]
    growth = last["rss_mb"] / first["rss_mb"] - 1
    commit = git_commit()
    m = Settings().matcher
    text = (
        f"\n### Matcher memory — {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
        f"commit `{commit}`\n\n"
        f"One matcher worker (rocksdict store, rocksdb cap {m.rocksdb_memory_mb} MiB for all "
        f"partitions, memtables of {m.rocksdb_write_buffer_mb} MiB), one new pair per "
        f"interaction, arrays of 500; sampled after everything was applied. "
        f"{os.cpu_count()} cores.\n\n"
        "| pairs sent | pairs tracked | worker RSS | state on disk | elapsed |\n"
        "|---|---|---|---|---|\n"
        + "".join(
            f"| {r['pairs_sent']:,.0f} | {r['pairs_tracked']:,.0f} | {r['rss_mb']:,.0f} MB "
            f"| {r['disk_mb']:,.0f} MB | {r['elapsed_s']:,.0f} s |\n"
            for r in rows
        )
        + f"\nRSS from {first['pairs_sent']:,.0f} to {last['pairs_sent']:,.0f} pairs: "
        f"{growth:+.1%} (target ±20%).\n"
    )
    current.append_history(text, args.out)
    current.update(
        [
            current.Row(
                "matcher RSS, 1 M → 10 M pairs",
                "flat (±20%)",
                f"{first['rss_mb']:,.0f} MB → {last['rss_mb']:,.0f} MB ({growth:+.1%}) from "
                f"{first['pairs_sent']:,.0f} to {last['pairs_sent']:,.0f} pairs",
                "`make bench-memory`, bench/memory.py: one worker, one new pair per event",
            )
        ]
    )
    print(text)
    print(f"rss_growth={growth:+.3f} pairs={last['pairs_sent']:.0f}")


if __name__ == "__main__":
    main()
