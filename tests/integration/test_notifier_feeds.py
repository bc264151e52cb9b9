"""Consent, holds, caps, answers, mutual meetups, live stream, object-level authorisation and
the right to be forgotten, on the real Kafka and Redis with the real services."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from schemas.suggestions import SUGGESTION_ADAPTER, Suggestion
from services.common.kafka import Topics, ensure_topics, new_producer
from services.common.redis import Keys, new_redis
from services.common.settings import Settings
from services.notifier.store import FeedStore
from services.pipeline import drain_matcher, read_suggestions, wait_caught_up
from tests.conftest import _check_servers, new_namespace, settings_for, unavailable
from tests.factories import WEEKS_OF_TALK_TRIGGER, interaction, weeks_of_talk
from tests.people import ADMIN, admin_feed, opt_in, sign_in, token_for
from tests.stack import ServiceStack
from tests.webhooks import read_topic

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceStack]:
    problem = asyncio.run(_check_servers())
    if problem:
        unavailable(problem)
    settings = settings_for(new_namespace())
    asyncio.run(ensure_topics(settings))
    s = ServiceStack(
        settings,
        tmp_path_factory.mktemp("notify"),
        ("ingest", "feeds", "matcher", "notifier"),
        REALCONNECT_NOTIFIER__RELEASE_INTERVAL_S="0.5",
    )
    try:
        s.start()
        yield s
    finally:
        s.stop()


def suggestion(a: str, b: str, n: int = 0, sources: list[str] | None = None) -> Suggestion:
    pair = (a, b) if a < b else (b, a)
    return Suggestion(
        suggestion_id=f"{abs(hash((pair, n))):032x}"[:32],
        pair=pair,
        score=3.0,
        suggested_at=NOW - timedelta(minutes=n),
        evidence={
            "sources": sources or ["mastodon"],
            "meetup": {"kind": "coffee", "city": "Lisbon"},
        },
        explanation="You two have traded 9 replies in both directions.",
    )


async def send(settings: Settings, *items: Suggestion) -> None:
    producer = new_producer(settings, client_id="test")
    await producer.start()
    try:
        for s in items:
            await producer.send_and_wait(
                Topics(settings).suggestions,
                key="|".join(s.pair).encode(),
                value=SUGGESTION_ADAPTER.dump_json(s),
            )
    finally:
        await producer.stop()
    t = Topics(settings)
    await wait_caught_up(settings, t.suggestions, t.app_id("notifier"), time.monotonic() + 60, 0.2)


def poll(fn: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := fn():
            return result
        time.sleep(0.2)
    return fn()


def my_feed(stack: ServiceStack, auth: dict[str, str]) -> list[dict[str, Any]]:
    r = httpx.get(f"{stack.url('feeds')}/v1/me/feed", headers=auth)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def delivery_decision(stack: ServiceStack, a: str, b: str) -> dict[str, Any]:
    """The notifier's record of its decision about the pair's latest suggestion (issue 39)."""
    redis = new_redis(stack.settings)
    try:
        store = FeedStore(redis, Keys(stack.settings), cap=stack.settings.notifier.feed_cap)
        got = await store.delivery_decision(f"{a}|{b}" if a < b else f"{b}|{a}")
    finally:
        await redis.aclose()
    assert got is not None
    return got


def failed(record: dict[str, Any]) -> list[str]:
    return [g["name"] for g in record["gates"] if not g["passed"]]


async def test_no_delivery_without_both_consents(stack: ServiceStack) -> None:
    feeds = stack.url("feeds")
    ann = opt_in(feeds, "c:ann")
    ben = token_for(feeds, "c:ben")  # has a token, has not opted in
    await send(stack.settings, suggestion("c:ann", "c:ben", 1))
    assert my_feed(stack, ann) == [] and my_feed(stack, ben) == []
    record = await delivery_decision(stack, "c:ann", "c:ben")
    assert (record["action"], record["decided_by"], failed(record)) == (
        "drop",
        "consent",
        ["consent"],
    )
    consent = record["gates"][0]
    assert (consent["name"], consent["value"], consent["threshold"]) == ("consent", 1, 2)
    r = httpx.put(f"{feeds}/v1/me/preferences", json={"opted_in": True}, headers=ben)
    assert r.status_code == 200
    await send(stack.settings, suggestion("c:ann", "c:ben", 2))
    assert len(my_feed(stack, ann)) == 1 and len(my_feed(stack, ben)) == 1
    record = await delivery_decision(stack, "c:ann", "c:ben")
    assert (record["action"], record["decided_by"], failed(record)) == ("deliver", None, [])
    assert record["suggestion_id"] == suggestion("c:ann", "c:ben", 2).suggestion_id


async def test_exclusions_are_honoured_and_never_revealed(stack: ServiceStack) -> None:
    feeds = stack.url("feeds")
    ann = opt_in(feeds, "x:ann", never_with=["x:ben"])
    ben = opt_in(feeds, "x:ben")
    await send(stack.settings, suggestion("x:ann", "x:ben"))
    assert my_feed(stack, ann) == [] and my_feed(stack, ben) == []
    record = await delivery_decision(stack, "x:ann", "x:ben")
    assert (record["action"], record["decided_by"], failed(record)) == (
        "drop",
        "excluded",
        ["never_with"],
    )
    # ben cannot read ann's preferences: only his own
    assert httpx.get(f"{feeds}/v1/me/preferences", headers=ben).json()["never_with"] == []


async def test_quiet_hours_hold_and_later_deliver(stack: ServiceStack) -> None:
    feeds = stack.url("feeds")
    now = datetime.now(UTC)
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
    }
    ann = opt_in(feeds, "q:ann", quiet_hours=quiet)
    ben = opt_in(feeds, "q:ben")
    await send(stack.settings, suggestion("q:ann", "q:ben"))
    await asyncio.sleep(1.5)  # a negative check: three release rounds later, still held
    assert my_feed(stack, ann) == [] and my_feed(stack, ben) == []
    record = await delivery_decision(stack, "q:ann", "q:ben")
    assert (record["action"], record["decided_by"], failed(record)) == (
        "hold",
        "quiet_hours",
        ["quiet_hours"],
    )
    redis = new_redis(stack.settings)
    try:
        keys, n = Keys(stack.settings), stack.settings.kafka.partitions
        assert sum([await redis.zcard(keys.held_in(p)) for p in range(n)]) >= 1
    finally:
        await redis.aclose()
    # the quiet hours end (here: the person drops them): the held delivery goes out
    httpx.put(
        f"{feeds}/v1/me/preferences", json={"opted_in": True, "max_per_week": 50}, headers=ann
    ).raise_for_status()
    assert len(poll(lambda: my_feed(stack, ann))) == 1
    assert len(my_feed(stack, ben)) == 1


async def test_the_weekly_cap_holds(stack: ServiceStack) -> None:
    feeds = stack.url("feeds")
    ann = opt_in(feeds, "w:ann", max_per_week=1)
    others = {p: opt_in(feeds, p) for p in ("w:ben", "w:cat", "w:dan")}
    await send(stack.settings, *(suggestion("w:ann", p, i) for i, p in enumerate(others)))
    assert len(my_feed(stack, ann)) == 1
    assert sum(len(my_feed(stack, a)) for a in others.values()) == 1  # the others are held


async def test_a_decline_is_invisible_and_both_accepts_make_a_meetup(stack: ServiceStack) -> None:
    feeds = stack.url("feeds")
    ann, ben = opt_in(feeds, "d:ann", time_zone="Europe/Lisbon"), opt_in(feeds, "d:ben")
    cat, dan = opt_in(feeds, "m:cat", time_zone="America/New_York"), opt_in(feeds, "m:dan")
    await send(stack.settings, suggestion("d:ann", "d:ben"), suggestion("m:cat", "m:dan"))

    [item] = my_feed(stack, ann)
    r = httpx.post(f"{feeds}/v1/me/feed/{item['item_id']}/decline", headers=ann)
    assert r.status_code == 200 and r.json()["response"] == "declined"
    [theirs] = my_feed(stack, ben)
    assert theirs["response"] is None and theirs["type"] == "suggestion"  # nothing revealed
    r = httpx.post(f"{feeds}/v1/me/feed/{item['item_id']}/accept", headers=ben)
    assert r.status_code == 200
    assert [i["type"] for i in my_feed(stack, ben)] == ["suggestion"]  # no meetup after a decline

    [item] = my_feed(stack, cat)
    for who in (cat, dan):
        assert (
            httpx.post(f"{feeds}/v1/me/feed/{item['item_id']}/accept", headers=who).status_code
            == 200
        )
        if who is cat:  # one yes: the meetup is not on, so there is no "we met" yet
            r = httpx.post(f"{feeds}/v1/me/feed/{item['item_id']}/met", headers=cat)
            assert r.status_code == 409, r.text
    for who in (cat, dan):
        mutual = [i for i in my_feed(stack, who) if i["type"] == "mutual"]
        assert len(mutual) == 1
        meetup = mutual[0]["meetup"]
        assert meetup["kind"] == "coffee" and meetup["window"]["start"]
        assert set(meetup["window"]["local"]) == {"America/New_York", "UTC"}
    r = httpx.post(
        f"{feeds}/v1/me/feed/{mutual[0]['item_id']}/met", json={"rating": 5}, headers=dan
    )
    assert r.status_code == 200 and r.json()["met_rating"] == 5

    t = Topics(stack.settings)
    answers = [
        json.loads(r.value) for r in await read_topic(stack.settings, t.feedback, expected=4)
    ]
    outcomes = sorted((a["person_id"], a["outcome"]) for a in answers)
    assert ("d:ann", "declined") in outcomes and ("m:dan", "met") in outcomes
    assert ("m:cat", "accepted") in outcomes and ("m:dan", "accepted") in outcomes


async def test_two_yeses_at_the_same_instant_make_one_meetup(stack: ServiceStack) -> None:
    """Both people of a pair press yes at once, for 12 pairs: answers to one suggestion are
    taken one at a time (one lock per item, whoever answers), so the second sees the first's
    yes and each pair's meetup is on, once, in both feeds."""
    feeds = stack.url("feeds")
    pairs = [(f"race:a{n}", f"race:b{n}") for n in range(12)]
    auth = {
        p: opt_in(feeds, p, channels=["page", "email"], email=f"{p.replace(':', '-')}@example.org")
        for pair in pairs
        for p in pair
    }
    await send(stack.settings, *(suggestion(a, b, n) for n, (a, b) in enumerate(pairs)))
    items = {a: my_feed(stack, auth[a])[0]["item_id"] for a, _ in pairs}
    async with httpx.AsyncClient(base_url=feeds, timeout=30) as client:
        answers = await asyncio.gather(
            *(
                client.post(f"/v1/me/feed/{items[a]}/accept", headers=auth[who])
                for a, b in pairs
                for who in (a, b)
            )
        )
    assert [r.status_code for r in answers] == [200] * len(answers)
    for a, b in pairs:
        for who in (a, b):
            mutual = [i for i in my_feed(stack, auth[who]) if i["type"] == "mutual"]
            assert len(mutual) == 1, (who, mutual)
    # and each meetup is announced once to each: one invite email job each, not two
    jobs = await read_topic(stack.settings, Topics(stack.settings).emails, settle=2.0)
    invites = Counter(
        (j["person_id"], j["item"]["item_id"])
        for j in (json.loads(r.value) for r in jobs)
        if j["item"]["type"] == "mutual" and j["person_id"].startswith("race:")
    )
    assert len(invites) == 2 * len(pairs)
    assert set(invites.values()) == {1}, invites


async def test_snooze_hides_an_item_and_read_marks_it(stack: ServiceStack) -> None:
    feeds = stack.url("feeds")
    ann, _ = opt_in(feeds, "s:ann"), opt_in(feeds, "s:ben")
    await send(stack.settings, suggestion("s:ann", "s:ben"))
    [item] = my_feed(stack, ann)
    assert item["read"] is False
    assert httpx.post(f"{feeds}/v1/me/feed/{item['item_id']}/read", headers=ann).json()["read"]
    r = httpx.post(
        f"{feeds}/v1/me/feed/{item['item_id']}/snooze", json={"snooze_days": 2}, headers=ann
    )
    assert r.status_code == 200
    assert my_feed(stack, ann) == []


async def test_every_endpoint_refuses_other_peoples_objects(stack: ServiceStack) -> None:
    feeds = stack.url("feeds")
    ann, ben, eve = opt_in(feeds, "b:ann"), opt_in(feeds, "b:ben"), opt_in(feeds, "b:eve")
    await send(stack.settings, suggestion("b:ann", "b:ben"))
    [item] = my_feed(stack, ann)
    iid = item["item_id"]
    # no token, or a made-up one: 401 on every /v1/me endpoint
    for auth in ({}, {"authorization": "Bearer not-a-token"}):
        assert httpx.get(f"{feeds}/v1/me/feed", headers=auth).status_code == 401
        assert httpx.get(f"{feeds}/v1/me/preferences", headers=auth).status_code == 401
        assert httpx.put(f"{feeds}/v1/me/preferences", json={}, headers=auth).status_code == 401
        assert httpx.get(f"{feeds}/v1/me/feed/stream", headers=auth).status_code == 401
        for action in ("accept", "decline", "snooze", "met", "read"):
            assert httpx.post(f"{feeds}/v1/me/feed/{iid}/{action}", headers=auth).status_code == 401
    # another person's token: their own (empty) feed, and 404 on this item for every action
    assert my_feed(stack, eve) == []
    for action in ("accept", "decline", "snooze", "met", "read"):
        r = httpx.post(f"{feeds}/v1/me/feed/{iid}/{action}", headers=eve)
        assert r.status_code == 404, (action, r.text)
    assert [i["response"] for i in my_feed(stack, ann)] == [None]  # untouched
    # a person's token is not an admin token
    for method, path in (
        ("POST", "/v1/people/b:ann/tokens"),
        ("GET", "/v1/people/b:ann/feed"),
        ("DELETE", "/v1/people/b:ann"),
    ):
        for auth in ({}, ann, ben):
            assert httpx.request(method, f"{feeds}{path}", headers=auth).status_code == 401


async def test_the_stream_pushes_new_items(stack: ServiceStack) -> None:
    feeds = stack.url("feeds")
    ann = opt_in(feeds, "e:ann")
    opt_in(feeds, "e:ben")
    received: list[str] = []

    def listen() -> None:
        with httpx.stream("GET", f"{feeds}/v1/me/feed/stream", headers=ann, timeout=30) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                if line.startswith("data: "):
                    received.append(line)
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    redis = new_redis(stack.settings)
    try:  # the stream has subscribed before the delivery
        channel = Keys(stack.settings).feed_events("e:ann")
        for _ in range(100):
            if (await redis.pubsub_numsub(channel))[0][1] >= 1:
                break
            await asyncio.sleep(0.1)
    finally:
        await redis.aclose()
    await send(stack.settings, suggestion("e:ann", "e:ben"))
    thread.join(timeout=20)
    assert received and json.loads(received[0][6:])["other_person_id"] == "e:ben"


async def test_deleting_a_person_removes_them_everywhere(stack: ServiceStack) -> None:
    s = stack.settings
    feeds, ingest = stack.url("feeds"), stack.url("ingest")
    ann = opt_in(feeds, "f:ann")
    ben, cat = opt_in(feeds, "f:ben"), opt_in(feeds, "f:cat")
    httpx.put(
        f"{ingest}/v1/people/f:ann/identities/mastodon",
        json={"handle": "@ann@x.social"},
        headers=ADMIN,
    ).raise_for_status()
    httpx.put(
        f"{ingest}/v1/people/f:ann", json={"city": "Lisbon", "display_name": "Ann"}, headers=ADMIN
    ).raise_for_status()
    await send(s, suggestion("f:ann", "f:ben"), suggestion("f:ben", "f:cat"))
    # the matcher tracks a pair with ann
    producer = new_producer(s, client_id="test")
    await producer.start()
    try:
        e = interaction("f:ann", "f:ben", kind="reply", text="hello there, how are you?")
        await producer.send_and_wait(
            Topics(s).interactions, key=e.key.encode(), value=e.model_dump_json().encode()
        )
    finally:
        await producer.stop()
    redis = new_redis(s)
    keys = Keys(s)

    async def pairs_tracked() -> int:
        return sum(int(v) for v in await redis.hvals(keys.pairs_tracked))

    try:
        for _ in range(100):
            if await pairs_tracked() >= 1:
                break
            await asyncio.sleep(0.2)
        tracked = await pairs_tracked()
        assert tracked >= 1
        assert len(my_feed(stack, ben)) == 2

        r = httpx.delete(f"{feeds}/v1/people/f:ann", headers=ADMIN)
        assert r.status_code == 204

        assert admin_feed(feeds, "f:ann") == []
        assert httpx.get(f"{feeds}/v1/me/feed", headers=ann).status_code == 401  # token gone
        assert [i["other_person_id"] for i in my_feed(stack, ben)] == ["f:cat"]
        assert [i["other_person_id"] for i in my_feed(stack, cat)] == ["f:ben"]
        leftovers = [k async for k in redis.scan_iter(match=f"{s.namespace}:*f:ann*")]
        assert leftovers == []
        # ben's list of the notifier's decisions keeps his pair with cat, not the one with ann
        decided = {m.decode() for m in await redis.smembers(keys.delivery_decisions_of("f:ben"))}
        assert decided == {"f:ben|f:cat"}
        assert await redis.hget(keys.prefs, "f:ann") is None
        assert await redis.hget(keys.names, "f:ann") is None  # the name people saw
        for _ in range(100):  # the matcher drops every pair state with ann
            if await pairs_tracked() == tracked - 1:
                break
            await asyncio.sleep(0.2)
        assert await pairs_tracked() == tracked - 1
    finally:
        await redis.aclose()
    # Kafka: tombstones for the identity, the profile and the consent
    t = Topics(s)
    for topic, key in (
        (t.identities, b"mastodon:@ann@x.social"),
        (t.profiles, b"f:ann"),
        (t.consent, b"f:ann"),
    ):
        records = [r for r in await read_topic(s, topic, expected=1, settle=0.5) if r.key == key]
        assert records and records[-1].value is None, topic
    # and a new suggestion naming her is not delivered
    await send(s, suggestion("f:ann", "f:cat", 9))
    assert [i["other_person_id"] for i in my_feed(stack, cat)] == ["f:ben"]


async def produce_interactions(settings: Settings, events: list[Any]) -> None:
    producer = new_producer(settings, client_id="test")
    await producer.start()
    try:
        for e in events:
            await producer.send_and_wait(
                Topics(settings).interactions,
                key=e.key.encode(),
                value=e.model_dump_json().encode(),
            )
    finally:
        await producer.stop()
    await drain_matcher(settings, timeout=60)


async def test_a_suggestion_not_delivered_for_want_of_consent_holds_the_pair_a_day_not_a_month(
    stack: ServiceStack,
) -> None:
    """Issue 39, item 5: ben has not opted in when the matcher suggests him and ann, so the
    notifier drops it and tells the matcher ("undelivered"). ben opts in; three more
    exchanges each way a few days later, well inside the 30-day cooldown, make a second
    suggestion, which reaches both feeds. Before, the pair waited out the month."""
    settings, t = stack.settings, Topics(stack.settings)
    feeds = stack.url("feeds")
    ann = opt_in(feeds, "u:ann")
    ben = token_for(feeds, "u:ben")
    talk = weeks_of_talk("u:ann", "u:ben")
    await produce_interactions(settings, talk)
    first_at = talk[WEEKS_OF_TALK_TRIGGER].occurred_at

    def undelivered(recs: list[Any]) -> bool:  # ours: other tests drop for consent too
        return any(
            json.loads(r.value)["outcome"] == "undelivered"
            and json.loads(r.value)["pair"] == ["u:ann", "u:ben"]
            for r in recs
        )

    answers = await read_topic(settings, t.feedback, until=undelivered, settle=0.5)
    said = [json.loads(r.value) for r in answers if undelivered([r])]
    assert len(said) == 1
    assert said[0]["pair"] == ["u:ann", "u:ben"] and said[0]["person_id"] == "u:ben"
    assert datetime.fromisoformat(said[0]["at"]) == first_at  # on the events' clock
    await wait_caught_up(settings, t.feedback, t.app_id("matcher"), time.monotonic() + 60, 0.2)
    assert my_feed(stack, ann) == []

    r = httpx.put(f"{feeds}/v1/me/preferences", json={"opted_in": True}, headers=ben)
    assert r.status_code == 200
    last = talk[-1].occurred_at
    more = [
        interaction(a, b, kind="message", at=last + timedelta(days=2, hours=i))
        for i, (a, b) in enumerate([("u:ann", "u:ben"), ("u:ben", "u:ann")] * 3)
    ]
    assert (more[-1].occurred_at - first_at).days < 30  # inside the old cooldown
    await produce_interactions(settings, more)
    got = await pipeline_suggestions(settings, ("u:ann", "u:ben"), expected=2)
    assert len(got) == 2 and got[0].suggested_at == first_at
    # made by one of the new exchanges (which one depends on the reciprocity setting)
    assert got[1].suggested_at in {e.occurred_at for e in more}
    assert poll(lambda: len(my_feed(stack, ann)) == 1 and len(my_feed(stack, ben)) == 1)


async def pipeline_suggestions(
    settings: Settings, pair: tuple[str, str], expected: int
) -> list[Suggestion]:
    deadline = time.monotonic() + 60
    while True:
        got = [s for s in await read_suggestions(settings, idle_s=1.0) if s.pair == pair]
        if len(got) >= expected or time.monotonic() > deadline:
            return got


def why_not(stack: ServiceStack, auth: dict[str, str], other: str) -> httpx.Response:
    return httpx.get(
        f"{stack.url('feeds')}/v1/me/why-not", params={"with": other}, headers=auth, timeout=30
    )


async def test_why_not_never_tells_the_other_s_decline_consent_or_quiet_hours_apart(
    stack: ServiceStack,
) -> None:
    """Issue 39: ann asks why she is not suggested meeting four people she talks with.
    Three were suggested with her: bo declined, cy has not opted in, di is in her quiet
    hours. ann gets the same answer, word for word, about each. About ed, with whom she has
    exchanged too little, she is told what is missing. Bad questions get clear 4xx."""
    settings, t = stack.settings, Topics(stack.settings)
    feeds = stack.url("feeds")
    ann = opt_in(feeds, "why:ann")
    bo = opt_in(feeds, "why:bo")
    token_for(feeds, "why:cy")  # never opts in
    hour = datetime.now(UTC).hour
    quiet = {"start": f"{(hour - 1) % 24:02d}:00", "end": f"{(hour + 3) % 24:02d}:00"}
    opt_in(feeds, "why:di", quiet_hours=quiet)
    talks = [weeks_of_talk("why:ann", other) for other in ("why:bo", "why:cy", "why:di", "why:gus")]
    short = [
        interaction("why:ann", "why:ed", kind="reply", text="How was the trip to Porto?", days=0),
        interaction(
            "why:ed", "why:ann", kind="reply", text="Lovely, the tiles everywhere!", days=1
        ),
    ]
    await produce_interactions(settings, [e for talk in talks for e in talk] + short)
    # bo sees the suggestion and declines it; ann's item stays as it was
    item = poll(lambda: [i for i in my_feed(stack, bo) if i["type"] == "suggestion"])
    assert item, "the suggestion reached bo"
    r = httpx.post(f"{feeds}/v1/me/feed/{item[0]['item_id']}/decline", headers=bo)
    assert r.status_code == 200, r.text
    await wait_caught_up(settings, t.feedback, t.app_id("matcher"), time.monotonic() + 60, 0.2)
    assert [i["other_person_id"] for i in my_feed(stack, ann)] == ["why:bo"]

    answers = {other: why_not(stack, ann, other) for other in ("why:bo", "why:cy", "why:di")}
    assert {o: r.status_code for o, r in answers.items()} == dict.fromkeys(answers, 200)
    bodies = {o: r.json() for o, r in answers.items()}
    assert bodies["why:bo"] == bodies["why:cy"] == bodies["why:di"]
    assert bodies["why:bo"]["answer"] == "not_now" and bodies["why:bo"]["settings"] is None

    ed = why_not(stack, ann, "why:ed")
    assert ed.status_code == 200 and ed.json()["answer"] == "not_yet"
    assert "and 1 from them so far" in ed.json()["reasons"][0]  # what ann knows: her own exchanges

    # bad questions: no token, oneself, someone never met, someone forgotten (the same 404)
    assert httpx.get(f"{feeds}/v1/me/why-not", params={"with": "why:bo"}).status_code == 401
    assert why_not(stack, ann, "why:ann").status_code == 422
    assert why_not(stack, ann, "x" * 300).status_code == 422
    never = why_not(stack, ann, "why:stranger")
    assert never.status_code == 404
    r = httpx.delete(f"{feeds}/v1/people/why:gus", headers=ADMIN, timeout=30)
    assert r.status_code in (200, 202, 204), r.text
    # the forgetting reaches the matcher's list through people.forgotten: a moment
    gone = poll(lambda: (r := why_not(stack, ann, "why:gus")).status_code == 404 and r)
    assert gone and gone.json()["detail"] == never.json()["detail"]


async def test_people_see_each_other_by_name(stack: ServiceStack) -> None:
    """Names, not ids (issue 41): the name a profile gives is what the other person's page
    shows, with the id beside it; the person's own heading too. A profile without a name
    (or a forgotten person) is shown by id again."""
    feeds, ingest = stack.url("feeds"), stack.url("ingest")
    ann = opt_in(feeds, "n:ann")
    opt_in(feeds, "n:ben")
    for person, name in (("n:ann", "Ann"), ("n:ben", "Benedikt")):
        httpx.put(
            f"{ingest}/v1/people/{person}", json={"display_name": name}, headers=ADMIN
        ).raise_for_status()
    await send(stack.settings, suggestion("n:ann", "n:ben"))
    assert my_feed(stack, ann)

    def page() -> str:
        with httpx.Client(base_url=feeds, timeout=10) as browser:
            r = httpx.post(f"{feeds}/v1/people/n:ann/signin-links", headers=ADMIN, timeout=10)
            token = str(r.json()["url"]).split("t=", 1)[1]
            assert sign_in(browser, token).status_code == 303
            return browser.get("/app").text

    html = page()
    assert 'Your suggestions, <bdi class="who">Ann</bdi>' in html
    named = '<bdi class="who">Benedikt</bdi> <span class="handle">(<bdi>n:ben</bdi>)</span>'
    assert f"Meet {named}?" in html
    httpx.put(f"{ingest}/v1/people/n:ben", json={}, headers=ADMIN).raise_for_status()
    assert 'Meet <bdi class="who">n:ben</bdi>?' in page()
