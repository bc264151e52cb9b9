"""Builders for test data."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.events import Interaction
from services.matcher.circle_stage import CircleStage
from services.matcher.store import BatchStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_ids = itertools.count()


def interaction(
    actor: str = "alice",
    target: str = "bob",
    *,
    kind: str = "message",
    at: datetime | None = None,
    days: float = 0,
    source: str = "test",
    **extra: Any,
) -> Interaction:
    return Interaction(
        source=source,
        event_id=extra.pop("event_id", f"e{next(_ids)}"),
        kind=kind,  # type: ignore[arg-type]
        actor=actor,
        target=target,
        occurred_at=(at or T0) + timedelta(days=days),
        **extra,
    )


def conversation(
    a: str,
    b: str,
    *,
    per_direction: int = 3,
    days: int = 2,
    kind: str = "message",
    source: str = "test",
) -> list[Interaction]:
    """Alternating exchanges spread evenly over ``days`` distinct days."""
    out = []
    for i in range(per_direction * 2):
        actor, target = (a, b) if i % 2 == 0 else (b, a)
        day = (i * days) // (per_direction * 2)
        out.append(interaction(actor, target, kind=kind, days=day + i / 1000, source=source))
    return out


def weeks_of_talk(
    a: str, b: str, *, kind: str = "message", source: str = "test"
) -> list[Interaction]:
    """A pair the matcher suggests with its **default gate**: seven exchanges each way over
    eight weeks (`conversation` over 56 days). The shipped model first reaches its bar (0.35)
    at the twelfth event, six each way (0.358; "over 6 weeks" in the sentence); the last two
    fall in the cooldown. Short conversations stay below the bar, rightly: too young."""
    return conversation(a, b, per_direction=7, days=56, kind=kind, source=source)


#: the index in `weeks_of_talk` of the event that makes the pair qualify (see its docstring)
WEEKS_OF_TALK_TRIGGER = 11


class _Written:
    """A changelog write's metadata, as aiokafka returns it."""

    def __init__(self, partition: int, offset: int) -> None:
        self.partition, self.offset = partition, offset


class AckingChangelog:
    """A changelog producer (``store.ChangelogProducer``) that Kafka acknowledges at once:
    each partition's records are appended to ``log`` with their offsets."""

    def __init__(self) -> None:
        self.log: dict[int, list[tuple[bytes, bytes | None]]] = {}

    async def send_many(
        self, topic: str, partition: int, records: Any
    ) -> list[asyncio.Future[Any]]:
        log = self.log.setdefault(partition, [])
        first = len(log)
        log.extend(records)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(_Written(partition, first))
        return [fut]


class MemoryStore(dict[bytes, bytes]):
    """faust's memory store as the batch stores use it: a mapping with a persisted offset."""

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        pass


def circle_stage(partitions: int = 1, k: int = 150) -> tuple[CircleStage, MemoryStore]:
    """A circle stage over a memory store whose changelog acknowledges at once: its writes
    reach the store with `write_circles`."""
    memory = MemoryStore()
    store = BatchStore(memory, AckingChangelog(), "circles-changelog")
    return CircleStage(store, partitions=partitions, k=k, half_life_days=21.0), memory


def write_circles(stage: CircleStage) -> None:
    """Write the stage's staged circles out and into its store (as after a batch)."""

    async def go() -> None:
        await stage.store.write_out()
        await stage.store.settle()
        await asyncio.sleep(0)  # the acknowledgement callbacks

    asyncio.run(go())
