"""Forget means gone: forgetting a person also forgets every handle linked to them (pair
states built under a handle before the link stop being tracked), removes the normalizer's
directory entries for those handles, survives a matcher restart (the list is durable and read
at start), and the console's dead-letter view withholds anything that names them."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from schemas.events import Interaction
from services import pipeline
from services.common.kafka import Topics, ensure_topics, new_producer
from services.common.redis import Keys, new_redis
from services.common.settings import Settings
from tests.factories import interaction
from tests.people import ADMIN
from tests.stack import ServiceStack

HANDLE = "mastodon:@ann@x.social"
TEXT = "Are you coming to the climbing session on Saturday? I can bring the spare rope."


def talk(a: str, b: str, start: datetime, tag: str) -> list[Interaction]:
    """Fourteen messages five days apart: suggested under the default gate (the shipped
    model passes its bar at the tenth)."""
    out = []
    for i in range(14):
        actor, target = (a, b) if i % 2 == 0 else (b, a)
        out.append(
            interaction(
                actor,
                target,
                kind="message",
                at=start + timedelta(days=5 * i),
                text=TEXT,
                event_id=f"{tag}-{i}",
            )
        )
    return out


async def produce(settings: Settings, events: list[Interaction]) -> None:
    producer = new_producer(settings, client_id="test")
    await producer.start()
    try:
        topic = Topics(settings).interactions
        for e in events:
            await producer.send_and_wait(
                topic, key=e.key.encode(), value=e.model_dump_json().encode()
            )
    finally:
        await producer.stop()


async def suggested_pairs(settings: Settings) -> set[tuple[str, str]]:
    await pipeline.drain_matcher(settings, timeout=90)
    return {s.pair for s in await pipeline.read_suggestions(settings, idle_s=1.0, unique=False)}


async def test_forgetting_reaches_handles_directory_restarts_and_the_console(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    await ensure_topics(settings)
    stack = ServiceStack(settings, tmp_path, ("ingest", "feeds", "console", "matcher"))
    stack_factory.append(stack)
    await asyncio.to_thread(stack.start)
    keys = Keys(settings)
    redis = new_redis(settings)
    t0 = datetime(2026, 2, 2, 12, tzinfo=UTC)
    try:
        # the handle talked before anyone linked it to a person: tracked under the handle
        await produce(settings, talk(HANDLE, "mastodon:@bob@x.social", t0, "h1"))
        assert (HANDLE, "mastodon:@bob@x.social") in await suggested_pairs(settings)
        await redis.hset(keys.directory("mastodon"), "account:x.social:1", HANDLE)
        await redis.hset(keys.directory("mastodon"), "account:x.social:2", "mastodon:@bob@x.social")
        group = keys.members("mastodon", "members:x.social:g1")  # a group conversation's
        listed = keys.members("mastodon", "members:x.social:g1", listed=True)
        await redis.sadd(group, HANDLE, "mastodon:@bob@x.social")
        await redis.sadd(listed, HANDLE, "mastodon:@bob@x.social")
        async with httpx.AsyncClient() as http:
            r = await http.put(
                f"{stack.url('ingest')}/v1/people/f:ann/identities/mastodon",
                json={"handle": "@ann@x.social"},
                headers=ADMIN,
            )
            assert r.status_code == 200, r.text
            assert r.json()["handle"] == HANDLE
            assert (
                await http.delete(f"{stack.url('feeds')}/v1/people/f:ann", headers=ADMIN)
            ).status_code == 204

        # the directory no longer points at the handle; other entries stay
        directory = await redis.hgetall(keys.directory("mastodon"))
        assert b"account:x.social:1" not in directory and b"account:x.social:2" in directory
        # and no group conversation's member list holds it
        for key in (group, listed):
            assert await redis.smembers(key) == {b"mastodon:@bob@x.social"}

        # the matcher restarts (SIGKILL), then the handle and the id talk again: nothing
        await asyncio.to_thread(stack.kill, "matcher", signal.SIGKILL)
        await asyncio.to_thread(stack.start_one, "matcher")
        await asyncio.to_thread(stack.wait_ready, "matcher")
        later = t0 + timedelta(days=60)
        await produce(
            settings,
            talk(HANDLE, "mastodon:@cyd@x.social", later, "h2")
            + talk("f:ann", "f:dan", later, "h3")
            + talk("f:eve", "f:fay", later, "ok"),  # a control pair
        )
        pairs = await suggested_pairs(settings)
        assert ("f:eve", "f:fay") in pairs
        assert not {p for p in pairs if HANDLE in p or "f:ann" in p} - {
            (HANDLE, "mastodon:@bob@x.social")
        }

        # a dead letter that names the handle is withheld by the console
        producer = new_producer(settings, client_id="test")
        await producer.start()
        try:
            await producer.send_and_wait(
                Topics(settings).interactions_dlq,
                key=b"x",
                value=b'{"actor": "mastodon:@ann@x.social", "text": "something private"}',
                headers=[("dlq.reason", b"schema"), ("dlq.topic", b"interactions")],
            )
            # a raw platform payload names a local account by its bare name
            await producer.send_and_wait(
                Topics(settings).interactions_dlq,
                key=b"y",
                value=b'{"account": {"acct": "ann"}, "content": "another private thing"}',
                headers=[("dlq.reason", b"adapter"), ("dlq.topic", b"interactions.raw.mastodon")],
            )
        finally:
            await producer.stop()
        async with httpx.AsyncClient() as http:
            dead = (
                await http.get(f"{stack.url('console')}/api/dead-letters", headers=ADMIN)
            ).json()
        assert len(dead) >= 2
        assert all("private" not in str(d) for d in dead)
        assert sum(d["payload"].startswith("[withheld") for d in dead) == 2
    finally:
        await redis.aclose()


async def test_forgetting_is_final_until_the_person_opts_in_again(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    """Attack 10 of the second round: after a person was forgotten, a newly issued token
    worked and took new preferences and an email address for them."""
    from services.notifier.store import FeedStore
    from tests.people import opt_in

    stack = ServiceStack(settings, tmp_path, ("feeds",))
    stack_factory.append(stack)
    await asyncio.to_thread(stack.start)
    feeds = stack.url("feeds")
    old = opt_in(feeds, "f:fay")
    async with httpx.AsyncClient(base_url=feeds, timeout=10) as c:
        assert (await c.delete("/v1/people/f:fay", headers=ADMIN)).status_code == 204
        # nothing is issued for them any more...
        r = await c.post("/v1/people/f:fay/tokens", headers=ADMIN)
        assert r.status_code == 409 and "opt-in-again" in r.json()["detail"], r.text
        assert (await c.post("/v1/people/f:fay/signin-links", headers=ADMIN)).status_code == 409
        assert (await c.get("/v1/me/preferences", headers=old)).status_code == 401
        # ...and a token that exists anyway (written straight into Redis) opens nothing
        redis = new_redis(settings)
        try:
            token, _ = await FeedStore(redis, Keys(settings), cap=10).issue_token("f:fay")
        finally:
            await redis.aclose()
        stray = {"authorization": f"Bearer {token}"}
        body = {"opted_in": True, "email": "fay@example.org", "channels": ["feed", "email"]}
        assert (await c.put("/v1/me/preferences", json=body, headers=stray)).status_code == 401
        assert (await c.get("/v1/me/feed", headers=stray)).status_code == 401
        # coming back takes an explicit opt-in
        for wrong in ({}, {"opted_in": False}, {"opted_in": "yes"}):
            r = await c.post("/v1/people/f:fay/opt-in-again", json=wrong, headers=ADMIN)
            assert r.status_code == 422, (wrong, r.status_code)
        r = await c.post("/v1/people/f:fay/opt-in-again", json={"opted_in": True}, headers=ADMIN)
        assert r.status_code == 201, r.text
        back = {"authorization": f"Bearer {r.json()['token']}"}
        prefs = await c.get("/v1/me/preferences", headers=back)
        assert prefs.status_code == 200 and prefs.json()["opted_in"] is True
        # someone never forgotten cannot be "brought back"
        r = await c.post("/v1/people/f:gus/opt-in-again", json={"opted_in": True}, headers=ADMIN)
        assert r.status_code == 409
