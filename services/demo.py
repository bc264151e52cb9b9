"""The demo's closing summary: what went through the pipeline, and what people would see."""

from __future__ import annotations

from services.common.redis import Keys, new_redis
from services.common.settings import Settings
from services.console.metrics import PipelineStats
from services.notifier.store import FeedStore
from services.pipeline import read_suggestions


async def summarize(settings: Settings, *, examples: int = 3) -> str:
    redis = new_redis(settings)
    stats = PipelineStats(settings, redis)
    await stats.start()
    try:
        snap = await stats.snapshot()
        suggestions = await read_suggestions(settings, idle_s=2.0)
        store = FeedStore(redis, Keys(settings), cap=settings.notifier.feed_cap)
        best = sorted(suggestions, key=lambda s: (-s.score, s.suggestion_id))[:examples]
        lines = [
            "realconnect demo summary",
            f"  events ingested        {snap['interactions_in']:>8,}",
            f"  pairs tracked          {snap['pairs_tracked']:>8,}",
            f"  suggestions            {len(suggestions):>8,}",
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
        return "\n".join(lines)
    finally:
        await stats.stop()
        await redis.aclose()
