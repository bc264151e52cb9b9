"""Group meetups end to end on the real Kafka and Redis with the real services (issue 38):
four people who all talk with each other become one group suggestion (once, whatever is
redelivered), delivered to each member's feed with their consent; it is "on" when three say
yes, naming only them; forgetting a member takes them out, and a group left with fewer than
three is withdrawn. The expected group comes from who the generator made talk with whom."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import combinations
from typing import Any

import httpx
import pytest

from schemas.events import Interaction
from schemas.suggestions import group_id
from services import pipeline
from services.common.kafka import Topics, ensure_topics
from tests.conftest import _check_servers, new_namespace, settings_for, unavailable
from tests.factories import interaction
from tests.integration.test_matcher_decisions import produce, records
from tests.people import ADMIN, admin_feed, opt_in
from tests.stack import ServiceStack

TEXT = "Shall we go through the launch checklist again tomorrow? I found two gaps in it."
START = datetime.now(UTC) - timedelta(weeks=5)
CIRCLE = ("g:ann", "g:bo", "g:cy", "g:di")


def talk(a: str, b: str, weeks: int, tag: str) -> list[Interaction]:
    """Replies back and forth twice a week."""
    out = []
    for w in range(weeks):
        for day in (1, 4):
            at = START + timedelta(weeks=w, days=day, minutes=len(tag))
            out.append(interaction(a, b, at=at, text=TEXT, event_id=f"{tag}-{w}-{day}-a"))
            out.append(
                interaction(
                    b, a, at=at + timedelta(minutes=9), text=TEXT, event_id=f"{tag}-{w}-{day}-b"
                )
            )
    return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceStack]:
    problem = asyncio.run(_check_servers())
    if problem:
        unavailable(problem)
    settings = settings_for(new_namespace())
    asyncio.run(ensure_topics(settings))
    s = ServiceStack(settings, tmp_path_factory.mktemp("groups"), ("feeds", "matcher", "notifier"))
    try:
        s.start()
        yield s
    finally:
        s.stop()


def poll(fn: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := fn():
            return result
        time.sleep(0.3)
    return fn()


def items_of(stack: ServiceStack, person: str, kind: str) -> list[dict[str, Any]]:
    return [i for i in admin_feed(stack.url("feeds"), person) if i["type"] == kind]


async def test_a_group_is_suggested_once_answered_by_each_and_survives_a_forgotten_member(
    stack: ServiceStack,
) -> None:
    s = stack.settings
    feeds = stack.url("feeds")
    auth = {p: opt_in(feeds, p) for p in (*CIRCLE, "g:eve")}
    # the four all talk with each other; eve talks with ann only (a chain, not a member)
    events = [e for a, b in combinations(CIRCLE, 2) for e in talk(a, b, 5, f"{a}{b}")]
    events += talk("g:ann", "g:eve", 5, "eve")
    await produce(s, Topics(s).interactions, records(events))
    await pipeline.drain_matcher(s, timeout=120)
    # the same records again (a producer's retry): nothing new
    await produce(s, Topics(s).interactions, records(events))
    await pipeline.drain_matcher(s, timeout=120)

    gid = group_id(CIRCLE)
    found = poll(lambda: all(items_of(stack, p, "group") for p in CIRCLE))
    assert found, "every member gets the group in their feed"
    groups = await pipeline.read_groups(s, idle_s=1.5)
    assert [g.members for g in groups] == [CIRCLE]  # one record: suggested once
    for p in CIRCLE:
        [item] = items_of(stack, p, "group")
        assert item["item_id"] == gid and tuple(item["members"]) == CIRCLE
    assert items_of(stack, "g:eve", "group") == []

    def answer(person: str, action: str) -> dict[str, Any]:
        r = httpx.post(f"{feeds}/v1/me/feed/{gid}/{action}", headers=auth[person], timeout=10)
        assert r.status_code == 200, r.text
        return dict(r.json())

    assert answer("g:ann", "accept")["response"] == "accepted"
    answer("g:bo", "accept")
    answer("g:cy", "decline")
    assert items_of(stack, "g:ann", "group_on") == []  # two yes: not yet on
    answer("g:di", "accept")
    on = {p: items_of(stack, p, "group_on") for p in CIRCLE}
    assert [len(on[p]) for p in CIRCLE] == [1, 1, 0, 1]  # cy declined: nothing, and unnamed
    yes = ("g:ann", "g:bo", "g:di")
    assert all(tuple(on[p][0]["members"]) == yes for p in yes)
    assert "g:cy" not in on["g:ann"][0]["explanation"]
    assert on["g:ann"][0]["meetup"]["window"]["start"] is not None
    # a yes-sayer reports the meetup
    r = httpx.post(
        f"{feeds}/v1/me/feed/{on['g:bo'][0]['item_id']}/met", headers=auth["g:bo"], timeout=10
    )
    assert r.status_code == 200 and r.json()["response"] == "met"
    # cy cannot say "met" to a group that was never on for them
    r = httpx.post(f"{feeds}/v1/me/feed/{gid}/met", headers=auth["g:cy"], timeout=10)
    assert r.status_code == 409

    # di is forgotten: the group goes on with three, the "on" (now two) is withdrawn
    assert httpx.delete(f"{feeds}/v1/people/g:di", headers=ADMIN, timeout=10).status_code == 204
    [left] = items_of(stack, "g:ann", "group")
    assert tuple(left["members"]) == ("g:ann", "g:bo", "g:cy")
    assert "g:di" not in str(left["evidence"]) and "g:di" not in left["explanation"]
    assert items_of(stack, "g:ann", "group_on") == [] == items_of(stack, "g:bo", "group_on")
    # cy is forgotten too: two left, the group is withdrawn from everyone's feed
    assert httpx.delete(f"{feeds}/v1/people/g:cy", headers=ADMIN, timeout=10).status_code == 204
    assert items_of(stack, "g:ann", "group") == [] == items_of(stack, "g:bo", "group")
