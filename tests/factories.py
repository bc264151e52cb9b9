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
