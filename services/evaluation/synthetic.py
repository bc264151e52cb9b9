"""A generated community whose close ties are known, for testing the learning loop.

Two kinds of steady relationship, both in touch week after week, so that the shipped model
(which weighs persistence above all) cannot tell them apart:

- **friends** talk in the evening and at weekends, and call each other for a long time;
- **colleagues** message in office hours on weekdays, with short calls now and then.

A deployment whose people accept friends and decline colleagues should teach the matcher that
evenings, weekends and long calls matter here. The generator knows the answer (which pairs
are friends), so the test does not rely on the code under test.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from schemas.events import Interaction
from services.evaluation.datasets import Pair, pair

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday


@dataclass(frozen=True)
class Community:
    events: list[Interaction]
    friends: set[Pair]
    pairs: int


def community(
    *,
    people: int = 240,
    pairs: int = 400,
    friends_share: float = 0.35,
    weeks: int = 20,
    seed: int = 5,
) -> Community:
    rng = random.Random(seed)
    ids = [f"syn:{i}" for i in range(people)]
    chosen: set[Pair] = set()
    while len(chosen) < pairs:
        a, b = rng.sample(ids, 2)
        chosen.add(pair(a, b))
    friends = {p for p in sorted(chosen) if rng.random() < friends_share}
    events: list[Interaction] = []
    n = 0
    for p in sorted(chosen):
        friend = p in friends
        start_week = rng.randrange(0, 2 * weeks // 3)
        for week in range(start_week, weeks):
            if rng.random() < 0.25:
                continue  # a quiet week
            for _ in range(rng.randint(1, 3)):
                if friend:
                    day = rng.choice([0, 1, 2, 3, 4, 5, 5, 6, 6])  # weekends twice as likely
                    hour = rng.choice([19, 20, 21, 22, 23, 12, 15])
                else:
                    day = rng.randrange(0, 5)
                    hour = rng.randrange(9, 18)
                at = START + timedelta(weeks=week, days=day, hours=hour, minutes=rng.randrange(60))
                a, b = p if rng.random() < 0.5 else (p[1], p[0])
                call = rng.random() < (0.35 if friend else 0.15)
                duration = (
                    (rng.uniform(900, 3600) if friend else rng.uniform(30, 240)) if call else None
                )
                events.append(
                    Interaction(
                        source="phone",
                        event_id=f"syn-{n}",
                        kind="call" if call else "message",
                        actor=a,
                        target=b,
                        occurred_at=at,
                        duration_s=duration,
                    )
                )
                n += 1
                answer = at + timedelta(minutes=rng.randrange(2, 90))
                events.append(
                    Interaction(
                        source="phone",
                        event_id=f"syn-{n}",
                        kind="message",
                        actor=b,
                        target=a,
                        occurred_at=answer,
                    )
                )
                n += 1
    events.sort(key=lambda e: (e.occurred_at, e.event_id))
    return Community(events, friends, pairs)
