"""The console's page load with many pairs tracked (``make bench``).

Produces one interaction for each of N distinct pairs straight to Kafka, waits until the
matcher tracks them all, then loads the console in Debian's headless Chromium several times
and measures navigation-to-first-figures (the funnel rendered with live data) and the
``/api/stats`` answer time. Appends the figures to docs/benchmarks-history.md and updates
its row of the current results in docs/benchmarks.md.

Run: ``python -m bench.console_page --pairs 100000`` against a running stack (make bench).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench import current, git_commit
from schemas.events import Interaction
from services.common.kafka import Topics, ensure_topics, new_producer
from services.common.redis import Keys, new_redis
from services.common.settings import Settings

ADMIN = {"authorization": "Bearer dev-admin-token"}


async def seed(settings: Settings, pairs: int) -> float:
    await ensure_topics(settings)
    producer = new_producer(settings, client_id="bench")
    await producer.start()
    start = time.monotonic()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        futures = []
        for i in range(pairs):
            e = Interaction(
                source="bench",
                event_id=f"b{i}",
                kind="message",
                actor=f"bench:a{i}",
                target=f"bench:b{i}",
                occurred_at=t0 + timedelta(seconds=i),
            )
            futures.append(
                await producer.send(
                    Topics(settings).interactions,
                    key=e.key.encode(),
                    value=e.model_dump_json().encode(),
                )
            )
            if len(futures) >= 5000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.monotonic() - start


async def wait_tracked(settings: Settings, pairs: int, timeout: float) -> float:
    redis = new_redis(settings)
    start = time.monotonic()
    try:
        while time.monotonic() - start < timeout:
            tracked = sum(int(v) for v in await redis.hvals(Keys(settings).pairs_tracked))
            if tracked >= pairs:
                return time.monotonic() - start
            await asyncio.sleep(1)
    finally:
        await redis.aclose()
    raise TimeoutError(f"matcher tracks {tracked} of {pairs} pairs after {timeout} s")


def measure_page(url: str, runs: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            for _ in range(runs):
                context = browser.new_context()
                context.add_init_script(
                    "sessionStorage.setItem('realconnect.admin', 'dev-admin-token')"
                )
                page = context.new_page()
                t = time.perf_counter()
                page.goto(url)
                page.wait_for_selector('[data-testid="pairs_tracked"][data-raw]', timeout=30_000)
                times.append(time.perf_counter() - t)
                context.close()
        finally:
            browser.close()
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--out", type=Path, default=current.HISTORY)
    args = ap.parse_args()
    settings = Settings()
    seed_s = asyncio.run(seed(settings, args.pairs))
    track_s = asyncio.run(wait_tracked(settings, args.pairs, timeout=1800))
    console = f"http://{settings.console.host}:{settings.console.port}"
    api = []
    for _ in range(args.runs):
        t = time.perf_counter()
        httpx.get(f"{console}/api/stats", headers=ADMIN, timeout=30).raise_for_status()
        api.append(time.perf_counter() - t)
    page = measure_page(console + "/", args.runs)
    commit = git_commit()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    row = (
        f"\n### Console page load — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit `{commit}`\n\n"
        f"Machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}; "
        "broker: Apache Kafka 4.1.1 (KRaft, single node, same machine); "
        "Redis on the same machine.\n\n"
        f"| figure | value |\n|---|---|\n"
        f"| pairs tracked | {args.pairs:,} |\n"
        f"| seeding (produce {args.pairs:,} interactions) | {seed_s:.1f} s |\n"
        f"| matcher caught up (all pairs tracked) | {track_s:.1f} s after seeding |\n"
        f"| page load to live figures, median of {args.runs} (min–max) | "
        f"**{statistics.median(page) * 1000:.0f} ms** "
        f"({min(page) * 1000:.0f}–{max(page) * 1000:.0f} ms) |\n"
        f"| `/api/stats`, median of {args.runs} | {statistics.median(api) * 1000:.0f} ms |\n"
        f"| goal | page load under 1 s: {'met' if statistics.median(page) < 1 else 'NOT met'} |\n"
    )
    current.append_history(row, args.out)
    current.update(
        [
            current.Row(
                "console page load",
                "< 1 s",
                f"{statistics.median(page) * 1000:.0f} ms with {args.pairs:,} pairs tracked "
                f"(`/api/stats` {statistics.median(api) * 1000:.0f} ms)",
                f"`make bench`, bench/console_page.py: headless Chromium, median of {args.runs}",
            )
        ]
    )
    print(row)


if __name__ == "__main__":
    main()
