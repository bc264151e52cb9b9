"""Learning from answers on the real broker: people's answers on ``meetup.feedback`` become
labelled examples, the matcher refits its tie-strength model from them, and a later pair
that looks like the declined ones is no longer suggested, while before the answers such
pairs were."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from schemas.events import Interaction
from schemas.feedback import FeedbackGiven
from services import pipeline
from services.common.kafka import Topics, ensure_topics
from services.common.redis import Keys, new_redis
from tests.conftest import _check_servers, new_namespace, settings_for, unavailable
from tests.factories import interaction
from tests.integration.test_matcher_decisions import produce, records
from tests.stack import ServiceStack

START = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
TEXT = "How did the rehearsal go? I still can't get the bridge of the second song right."
PAIRS = 30  # a quarter of the answers judge the refit (learning.HOLD_BACK): 20+ still fit it


def eight_weeks(a: str, b: str, start: datetime, tag: str) -> list[Interaction]:
    """A steady friendship-like exchange: twice a week, both ways, for eight weeks."""
    out = []
    for week in range(8):
        for day in (0, 3):
            at = start + timedelta(weeks=week, days=day)
            out.append(interaction(a, b, at=at, text=TEXT, event_id=f"{tag}-{week}-{day}-a"))
            out.append(
                interaction(
                    b, a, at=at + timedelta(minutes=20), text=TEXT, event_id=f"{tag}-{week}-{day}-b"
                )
            )
    return out


@pytest.fixture(scope="module")
def learner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceStack]:
    problem = asyncio.run(_check_servers())
    if problem:
        unavailable(problem)
    settings = settings_for(new_namespace())
    asyncio.run(ensure_topics(settings))
    stack = ServiceStack(
        settings,
        tmp_path_factory.mktemp("learner"),
        ("matcher",),
        # the default bar and model; learning after 20 answers from 20 people (the default
        # is 30 from 10), a light prior so that this small test moves it, refits every 0.5 s
        REALCONNECT_MATCHER__MIN_PROBABILITY="0.35",
        REALCONNECT_MATCHER__LEARN_MIN_LABELS="20",
        REALCONNECT_MATCHER__LEARN_MIN_PEOPLE="20",
        REALCONNECT_MATCHER__LEARN_PRIOR_STRENGTH="5",
        REALCONNECT_MATCHER__LEARN_REFIT_S="0.5",
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


async def model_answers(stack: ServiceStack) -> int:
    r = new_redis(stack.settings)
    try:
        raw = await r.hget(Keys(stack.settings).model, "answers")
    finally:
        await r.aclose()
    return int(raw or 0)


async def test_declines_teach_the_matcher_to_hold_back_such_pairs(learner: ServiceStack) -> None:
    s = learner.settings
    t = Topics(s)
    first = [eight_weeks(f"l:a{i}", f"l:b{i}", START, f"p{i}") for i in range(PAIRS)]
    await produce(s, t.interactions, records([e for conv in first for e in conv]))
    await pipeline.drain_matcher(s, timeout=90)
    suggested = await pipeline.read_suggestions(s, idle_s=1.0, unique=False)
    by_pair = {x.pair: x for x in suggested}
    # before any answer, each of these pairs is suggested, once
    assert len(suggested) == PAIRS == len(by_pair)
    assert all(x.evidence["tie_strength"]["probability"] >= 0.35 for x in suggested)
    assert await model_answers(learner) == 0

    # both people decline every suggestion
    answers = []
    for x in suggested:
        for person in x.pair:
            fb = FeedbackGiven(
                suggestion_id=x.suggestion_id,
                pair=x.pair,
                person_id=person,
                outcome="declined",
                at=x.suggested_at + timedelta(hours=2),
            )
            answers.append(("|".join(x.pair).encode(), fb.model_dump_json().encode()))
    await produce(s, t.feedback, answers)
    deadline = asyncio.get_running_loop().time() + 60
    while await model_answers(learner) < 2 * PAIRS:
        assert asyncio.get_running_loop().time() < deadline, "the model was never refitted"
        await asyncio.sleep(0.3)

    # later, a pair that talks exactly like them: no longer suggested
    later = eight_weeks("l:new-a", "l:new-b", START + timedelta(weeks=30), "new")
    await produce(s, t.interactions, records(later))
    await pipeline.drain_matcher(s, timeout=90)
    after = await pipeline.read_suggestions(s, idle_s=1.0, unique=False)
    assert [x.pair for x in after if x.pair == ("l:new-a", "l:new-b")] == []
    assert len(after) == PAIRS  # nothing new at all
