"""The demo's closing summary: what went through the pipeline, and what people would see."""

from __future__ import annotations

from pathlib import Path

from services.common.redis import Keys, new_redis
from services.common.settings import Settings
from services.console.metrics import PipelineStats
from services.notifier.store import FeedStore
from services.pipeline import read_groups, read_suggestions


async def summarize(settings: Settings, *, examples: int = 3) -> str:
    redis = new_redis(settings)
    stats = PipelineStats(settings, redis)
    await stats.start()
    try:
        snap = await stats.snapshot()
        suggestions = await read_suggestions(settings, idle_s=2.0, unique=True)
        groups = await read_groups(settings, idle_s=1.0, unique=True)
        store = FeedStore(redis, Keys(settings), cap=settings.notifier.feed_cap)
        best = sorted(suggestions, key=lambda s: (-s.score, s.suggestion_id))[:examples]
        lines = [
            "realconnect demo summary",
            f"  events ingested        {snap['interactions_in']:>8,}",
            f"  pairs tracked          {snap['pairs_tracked']:>8,}",
            f"  suggestions            {len(suggestions):>8,}",
            f"  group suggestions      {len(groups):>8,}",
            f"  feed items written     {snap['feed_items']:>8,}",
            f"  dead letters           {snap['dead_letters']:>8,}",
            "",
            f"  {len(best)} example feed items (read back through the feed store):",
        ]
        for s in best:
            person = s.pair[0]
            item = next(
                (i for i in await store.feed(person, limit=500) if i["item_id"] == s.suggestion_id),
                None,
            )
            if item is None:
                lines.append(f"  - {person}: suggestion {s.suggestion_id} NOT FOUND in feed")
                continue
            lines.append(
                f"  - for {item['person_id']}, with {item['other_person_id']}"
                f" (score {item['score']}):"
            )
            lines.append(f"      {item['explanation']}")
        for g in groups[:examples]:
            lines.append(f"  - group of {len(g.members)}: {', '.join(g.members)}")
            lines.append(f"      {g.explanation}")
        return "\n".join(lines)
    finally:
        await stats.stop()
        await redis.aclose()


async def opt_in_everyone(settings: Settings, file: Path, *, max_per_week: int) -> int:
    """Consent for every person in ``file``, written like the feed API writes it: to the
    compacted ``people.consent`` topic (the source of truth) and to Redis."""
    from schemas.events import INTERACTION_ADAPTER
    from schemas.people import Preferences
    from services.common.kafka import Topics, ensure_topics, new_producer
    from services.pipeline import read_jsonl

    people: set[str] = set()
    for _, line in read_jsonl(file):
        i = INTERACTION_ADAPTER.validate_json(line)
        people.update((i.actor, i.target))
    prefs = Preferences(opted_in=True, max_per_week=max_per_week)
    await ensure_topics(settings)
    producer = new_producer(settings, client_id="realconnect-opt-in")
    redis = new_redis(settings)
    await producer.start()
    try:
        store = FeedStore(redis, Keys(settings), cap=settings.notifier.feed_cap)
        value = prefs.model_dump_json().encode()
        futures = [
            await producer.send(Topics(settings).consent, key=p.encode(), value=value)
            for p in sorted(people)
        ]
        for f in futures:
            await f
        for p in sorted(people):
            await store.set_preferences(p, prefs)
    finally:
        await producer.stop()
        await redis.aclose()
    return len(people)


async def example_person(settings: Settings) -> str | None:
    """Someone whose feed holds the strongest suggestion (the demo's sign-in link)."""
    suggestions = await read_suggestions(settings, idle_s=2.0, unique=True)
    if not suggestions:
        return None
    redis = new_redis(settings)
    try:
        store = FeedStore(redis, Keys(settings), cap=settings.notifier.feed_cap)
        for s in sorted(suggestions, key=lambda s: (-s.score, s.suggestion_id)):
            for person in s.pair:
                if await store.item(person, s.suggestion_id) is not None:
                    return person
        return None
    finally:
        await redis.aclose()
