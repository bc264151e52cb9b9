"""The person-relative decision on the real Kafka and Redis (issue 38): the running matcher,
with its default settings, suggests a pair whose probability is between the two bars when
each is among the other's three closest partners in their circles, and not the same numbers
in a busier life. Constructed by hand: both pairs have the same conversation (six messages
each way over six weeks: 0.304 under the shipped model, tests/unit/test_closest_decision.py),
below the global bar (0.35) and above the lower one (0.25); cat also talks, more, with three
others, so dan is fourth in cat's circle."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from schemas.events import Interaction
from services import pipeline
from services.common.kafka import ensure_topics
from services.common.settings import Settings
from tests.factories import conversation, interaction
from tests.integration.test_circles_pipeline import circles_now
from tests.integration.test_matcher_worker import produce, records
from tests.stack import ServiceStack


def busy(person: str, others: list[str]) -> list[Interaction]:
    """Twelve messages each way with each of ``others`` in the conversation's first days."""
    out = []
    for n, other in enumerate(others):
        for i in range(24):
            a, b = (person, other) if i % 2 == 0 else (other, person)
            out.append(interaction(a, b, days=i * 0.5 + n / 100, event_id=f"busy-{other}-{i}"))
    return out


async def test_each_others_closest_are_suggested_between_the_bars_a_busy_life_is_not(
    settings: Settings, stack_factory: list[ServiceStack], tmp_path: Path
) -> None:
    await ensure_topics(settings)
    # default settings: the default gate, and the person-relative decision (conftest.py turns
    # it off for the other tests)
    stack = ServiceStack(settings, tmp_path, ("matcher",), REALCONNECT_MATCHER__CLOSEST_TOP="3")
    stack_factory.append(stack)
    await asyncio.to_thread(stack.start)

    quiet = conversation("cl:ann", "cl:ben", per_direction=6, days=42)
    same = conversation("cl:cat", "cl:dan", per_direction=6, days=42)
    crowd = busy("cl:cat", ["cl:x1", "cl:x2", "cl:x3"])
    # the circles lag the pair states by a batch: the first weeks go first, the rest once the
    # circle stage has folded them (both conversations stay under 0.25 in their first weeks)
    first_part = [
        e for e in quiet + same if e.occurred_at - quiet[0].occurred_at < timedelta(days=21)
    ]
    rest = [e for e in quiet + same if e not in first_part]
    await produce(settings, records(sorted(crowd + first_part, key=lambda e: e.occurred_at)))
    await pipeline.drain_matcher(settings, timeout=90)
    before = {s.pair for s in await pipeline.read_suggestions(settings, idle_s=1.0)}
    assert ("cl:ann", "cl:ben") not in before and ("cl:cat", "cl:dan") not in before
    # the circle stage has folded those batches' activity: ann's circle holds ben, and
    # cat's the crowd
    deadline = asyncio.get_running_loop().time() + 45
    while True:
        cs = await circles_now(settings)
        if "cl:ben" in getattr(cs.get("cl:ann"), "entries", {}) and "cl:x3" in getattr(
            cs.get("cl:cat"), "entries", {}
        ):
            break
        assert asyncio.get_running_loop().time() < deadline, sorted(cs)
        await asyncio.sleep(0.5)
    await produce(settings, records(rest))
    await pipeline.drain_matcher(settings, timeout=90)

    out = {s.pair: s for s in await pipeline.read_suggestions(settings, idle_s=2.0)}
    assert ("cl:ann", "cl:ben") in out, sorted(out)
    s = out[("cl:ann", "cl:ben")]
    assert s.evidence["closest"] == {"rank": 1, "top": 3}  # only each other
    assert 0.25 <= s.score < 0.35
    assert "You are each other's closest contact" in s.explanation
    assert s.around is not None and s.around.rank == (1, 1)
    # the same numbers in a busy life: dan is cat's fourth, so the global bar decides
    assert ("cl:cat", "cl:dan") not in out
