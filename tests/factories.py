"""Builders for test data."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.events import Interaction

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
