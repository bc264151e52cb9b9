"""Each source through the real pipeline: signed HTTP in -> raw topic -> normalizer ->
canonical interactions on Kafka; every error class answered by the running service."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common.kafka import Topics, ensure_topics, new_producer
from services.pipeline import wait_caught_up
from tests.conftest import DATA_DIR, IN_CI, _check_servers, new_namespace, settings_for, unavailable
from tests.stack import ServiceStack
from tests.webhooks import interactions, post, read_topic, signed_headers

FIXTURES = DATA_DIR.parent / "fixtures" / "payloads"


def fx(path: str) -> Any:
    if not FIXTURES.is_dir():
        if IN_CI:
            pytest.fail(f"fixtures not found at {FIXTURES} (CI=true)")
        pytest.skip(f"fixtures not found at {FIXTURES}")
    return copy.deepcopy(json.loads((FIXTURES / path).read_text()))


def discord_reply() -> Any:
    """The captured reply, answering a person: as captured it answers a bot ("Reacton",
    ``bot: true`` in ``referenced_message`` and ``mentions``), which is no exchange between
    people."""
    body = fx("discord/gateway.MESSAGE_CREATE.reply.json")
    answered = body["d"]["referenced_message"]["author"]
    answered["bot"] = False
    for user in body["d"]["mentions"]:  # the same account, flagged in the mentions too
        if user["id"] == answered["id"]:
            user["bot"] = False
    return body


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceStack]:
    problem = asyncio.run(_check_servers())
    if problem:
        unavailable(problem)
    settings = settings_for(new_namespace())
    asyncio.run(ensure_topics(settings))
    s = ServiceStack(
        settings,
        tmp_path_factory.mktemp("sources"),
        ("ingest", "normalizer"),
        # a second, rotated-in secret for mastodon
        REALCONNECT_SOURCES__MASTODON__SECRETS='["new-mastodon-secret", "dev-mastodon-secret"]',
    )
    try:
        s.start()
        yield s
    finally:
        s.stop()


def ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "accepted"
    return body


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()


def by_event(items: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted((i["kind"], i["actor"], i["target"]) for i in items)


async def test_every_source_yields_canonical_interactions_keyed_by_pair(
    stack: ServiceStack,
) -> None:
    url = stack.url("ingest")
    github = fx("github/issue_comment.created.json")
    github["comment"]["user"]["login"] = "hubot"
    slack = fx("slack/event_callback.message.thread_reply_channel.json")
    slack["event"]["parent_user_id"] = "W333"
    sends = [
        ("mastodon", fx("mastodon/status.reply_with_mention.json"), {}),
        (
            "mastodon",
            fx("mastodon/notification.favourite.docs_abbreviated.json"),
            {"secret": "new-mastodon-secret"},
        ),
        ("bluesky", fx("bluesky/commit.post.create.reply.json"), {}),
        ("bluesky", fx("bluesky/commit.like.create.json"), {}),
        ("reddit", fx("reddit/thread.submission_with_comment_and_reply.json"), {}),
        ("slack", slack, {}),
        ("slack", fx("slack/event_callback.reaction_added.im_message.json"), {}),
        ("discord", discord_reply(), {}),
        ("github", github, {"event": "issue_comment"}),
        (
            "phone",
            {
                "records": [
                    {
                        "type": "call",
                        "id": "c1",
                        "from": "+4511",
                        "to": "+4522",
                        "started_at": "2026-03-01T09:00:00+01:00",
                        "duration_s": 62,
                    },
                    {
                        "type": "call",
                        "id": "c2",
                        "from": "+4522",
                        "to": "+4511",
                        "started_at": "2026-03-01T10:00:00+01:00",
                        "duration_s": 0,
                        "status": "missed",
                    },
                ]
            },
            {},
        ),
        (
            "generic",
            {
                "source": "generic",
                "event_id": "g1",
                "kind": "message",
                "actor": "x",
                "target": "y",
                "occurred_at": "2026-03-01T09:00:00+00:00",
                "text": "Are you coming to the lecture on Friday?",
                "weight": 1.0,  # a sender's own score is not taken: scored again
            },
            {},
        ),
    ]
    for source, body, kw in sends:
        ok(post(url, source, body, **kw))
    expected = {
        ("reply", "mastodon:@admin@localhost:3000", "mastodon:@mastodonpy_test_2@localhost:3000"),
        ("like", "mastodon:@haskal@cybre.space", "mastodon:@trwnh"),
        (
            "reply",
            "bluesky:did:plc:o2rolxey6s5k7d4lxcz3inl4",
            "bluesky:did:plc:i5y2f3gtpjxs3qg6fwgb6jb4",
        ),
        (
            "like",
            "bluesky:did:plc:wq4aajammjtxdomz3e23667t",
            "bluesky:did:plc:r2zybk6op3ymzpz6jhqpkoy5",
        ),
        ("comment", "reddit:u/paneer_burrito", "reddit:u/bboe"),
        ("reply", "reddit:u/bboe", "reddit:u/paneer_burrito"),
        ("reply", "slack:T111:W222", "slack:T111:W333"),
        ("like", "slack:T0JFD6M53:U27FFLNF4", "slack:T0JFD6M53:U299ATJ2X"),
        ("reply", "discord:134127815531560960", "discord:344487830824943618"),
        ("comment", "github:hubot", "github:codertocat"),
        ("call", "phone:+4511", "phone:+4522"),
        ("call", "phone:+4522", "phone:+4511"),
        ("message", "x", "y"),
    }
    got = await interactions(stack.settings, expected=len(expected))
    assert set(by_event(got)) == expected
    assert len(got) == len(expected)
    for i in got:
        assert i["_key"] == "|".join(sorted((i["actor"], i["target"])))
    # the text stops at the normalizer (and at ingest for the generic source): the topic
    # carries each exchange's score, never what was written
    for i in got:
        assert i.get("text") is None, i
        assert isinstance(i["weight"], float) and 0 <= i["weight"] <= 1, i
    weights = {i["event_id"]: i["weight"] for i in got}
    # hand-worked: a message (0.7) of eight words (effort 1.0) asking a question (+0.15)
    assert weights["g1"] == 0.85
    # likes weigh nothing; a missed call is no conversation
    assert all(i["weight"] == 0.0 for i in got if i["kind"] == "like")
    calls = {i["event_id"]: i["duration_s"] for i in got if i["kind"] == "call"}
    assert sorted(calls.values()) == [0.0, 62.0]
    sources = {i["source"] for i in got}
    assert sources == {
        "mastodon",
        "bluesky",
        "reddit",
        "slack",
        "discord",
        "github",
        "phone",
        "generic",
    }


async def test_a_redelivered_event_is_acknowledged_but_not_produced_again(
    stack: ServiceStack,
) -> None:
    settings = settings_for(stack.settings.namespace)
    body = fx("bluesky/commit.repost.create.json")
    before = len(await interactions(settings, expected=0, settle=0.5))
    ok(post(stack.url("ingest"), "bluesky", body))
    # a second delivery of the same event, signed anew (the same signed bytes would be a
    # replay, refused with 409: tests/security/test_replays.py)
    ok(post(stack.url("ingest"), "bluesky", body, t=int(time.time()) + 1))
    after = await interactions(settings, expected=before + 1, settle=3)
    assert len(after) == before + 1


async def test_unparseable_raw_records_are_dead_lettered_and_the_normalizer_goes_on(
    stack: ServiceStack,
) -> None:
    settings = stack.settings
    t = Topics(settings)
    producer = new_producer(settings, client_id="test")
    await producer.start()
    try:
        await producer.send_and_wait(
            t.raw("mastodon"),
            key=b"poison-1",
            value=b"{not json",
            headers=[("source", b"mastodon")],
        )
        await producer.send_and_wait(
            t.raw("discord"),
            key=b"poison-2",
            value=b'{"t": "MESSAGE_CREATE"}',
            headers=[("source", b"discord")],
        )
    finally:
        await producer.stop()
    body = discord_reply()
    body["d"]["id"] = "999000999000999000"
    ok(post(stack.url("ingest"), "discord", body))
    dead = await read_topic(settings, t.interactions_dlq, expected=2, settle=0.5)
    by_key = {r.key: r for r in dead}
    # not JSON: replaced whole (it could hold anything); the headers point at the original,
    # kept whole on its raw topic for the raw retention (24 hours by default)
    assert by_key[b"poison-1"].value == b"[redacted: 9 bytes, not JSON]"
    first = dict(by_key[b"poison-1"].headers)
    assert first["dlq.topic"] == t.raw("mastodon").encode() and first["dlq.offset"].isdigit()
    headers = dict(by_key[b"poison-2"].headers)
    assert headers["dlq.reason"] == b"adapter"
    assert b"ValidationError" in headers["dlq.error"]
    assert headers["dlq.service"] == b"normalizer"
    got = await interactions(settings, expected=1, timeout=30, settle=0.5)
    assert any(i["event_id"].startswith("discord:999000999000999000/") for i in got)
    assert stack.procs["normalizer"].poll() is None


async def test_counterparts_resolve_from_earlier_payloads(stack: ServiceStack) -> None:
    settings = stack.settings
    url = stack.url("ingest")
    single = fx("reddit/comment.info_single.json")
    single["data"]["children"][0]["data"]["parent_id"] = "t1_zz9unseen"  # a parent not yet seen
    delivery = ok(post(url, "reddit", single))["delivery_id"].encode()
    dead = await read_topic(
        settings,
        Topics(settings).interactions_dlq,
        settle=0,
        until=lambda recs: any(r.key == delivery for r in recs),
    )
    [record] = [r for r in dead if r.key == delivery]
    assert dict(record.headers)["dlq.reason"] == b"unresolved_counterpart"
    assert b"thing:t1_zz9unseen" in dict(record.headers)["dlq.error"]
    # the parent arrives; the same reply delivered again now resolves
    parent = fx("reddit/comment.info_single.json")
    p = parent["data"]["children"][0]["data"]
    p.update(name="t1_zz9unseen", id="zz9unseen", author="Someone", parent_id="t3_other")
    ok(post(url, "reddit", parent))  # its own parent (the post) is unknown: dead-lettered too
    ok(post(url, "reddit", single, t=int(time.time()) + 1))  # signed anew: not a replay

    def resolved(found: list[dict[str, Any]]) -> bool:
        return any(i["target"] == "reddit:u/someone" for i in found)

    got = await interactions(settings, timeout=30, settle=0, until=resolved)
    assert ("reply", "reddit:u/bboe", "reddit:u/someone") in by_event(got)


async def test_mastodon_ids_resolve_only_on_the_server_that_answered(stack: ServiceStack) -> None:
    """A Mastodon account id means someone only on the server that gave it: the sender names
    that server in X-Realconnect-Origin, and the directory key carries it."""
    settings, url = stack.settings, stack.url("ingest")

    def send(body: Any, origin: str) -> httpx.Response:
        raw = json.dumps(body).encode()
        headers = {**signed_headers("mastodon", raw), "X-Realconnect-Origin": origin}
        return httpx.post(f"{url}/v1/sources/mastodon/events", content=raw, headers=headers)

    author = fx("mastodon/status.reply_with_mention.json")  # by admin, a local account there
    bob = {"id": "777001", "acct": "bob@remote.example", "url": "https://remote.example/@bob"}
    taught = copy.deepcopy(author)
    taught.update(
        id="900001",
        mentions=[{**bob, "username": "bob"}],
        in_reply_to_id=None,
        in_reply_to_account_id=None,
    )
    taught["account"]["acct"] = "admin@localhost:3000"
    ok(send(taught, "one.example"))  # teaches account:one.example:777001 -> bob
    reply = copy.deepcopy(taught)
    reply.update(id="900002", mentions=[], in_reply_to_id="1", in_reply_to_account_id="777001")
    ok(send(reply, "one.example"))
    same_id_elsewhere = copy.deepcopy(reply)
    same_id_elsewhere["id"] = "900003"
    delivery = ok(send(same_id_elsewhere, "two.example"))["delivery_id"].encode()

    def replied(found: list[dict[str, Any]]) -> bool:
        return any(i["event_id"].startswith("mastodon:900002/reply/") for i in found)

    got = await interactions(settings, timeout=30, settle=0, until=replied)
    assert [i["target"] for i in got if i["event_id"].startswith("mastodon:900002/reply/")] == [
        "mastodon:@bob@remote.example"
    ]
    dead = await read_topic(
        settings,
        Topics(settings).interactions_dlq,
        settle=0,
        until=lambda recs: any(r.key == delivery for r in recs),
    )
    [record] = [r for r in dead if r.key == delivery]
    assert b"account:two.example:777001" in dict(record.headers)["dlq.error"]
    bad = send(reply, "not a host/")
    assert bad.status_code == 422 and "x-realconnect-origin" in bad.text.lower()


def test_error_classes(stack: ServiceStack) -> None:
    url = stack.url("ingest")
    body = json.dumps(fx("bluesky/commit.like.create.json")).encode()
    ev = f"{url}/v1/sources/bluesky/events"

    # 422 unknown source, naming the path parameter and the known sources
    unknown = problem(post(url, "myspace", {"a": 1}), 422)["errors"]
    assert unknown[0]["pointer"] == "/path/source" and "mastodon" in unknown[0]["msg"]

    # 401: missing, wrong secret, stale timestamp, tampered body
    problem(httpx.post(ev, content=body, headers={"content-type": "application/json"}), 401)
    problem(
        httpx.post(ev, content=body, headers=signed_headers("bluesky", body, secret="wrong")), 401
    )
    stale = signed_headers("bluesky", body, t=int(time.time()) - 3600)
    assert "tolerance" in problem(httpx.post(ev, content=body, headers=stale), 401)["detail"]
    problem(httpx.post(ev, content=body + b" ", headers=signed_headers("bluesky", body)), 401)
    # 401 for the Slack and GitHub schemes too
    slack = json.dumps(fx("slack/event_callback.reaction_added.im_message.json")).encode()
    problem(
        httpx.post(
            f"{url}/v1/sources/slack/events",
            content=slack,
            headers=signed_headers("slack", slack, secret="nope"),
        ),
        401,
    )
    gh = json.dumps(fx("github/issue_comment.created.json")).encode()
    problem(
        httpx.post(
            f"{url}/v1/sources/github/events",
            content=gh,
            headers=signed_headers("github", gh, secret="nope"),
        ),
        401,
    )
    # 409: the very same delivery again (same signature and delivery id)
    headers = signed_headers("bluesky", body)
    ok(httpx.post(ev, content=body, headers=headers))
    p = problem(httpx.post(ev, content=body, headers=headers), 409)
    assert "already received" in p["detail"]
    # 413 over 1 MiB
    big = b'{"did": "did:plc:x", "pad": "' + b"x" * (1024 * 1024) + b'"}'
    problem(httpx.post(ev, content=big, headers=signed_headers("bluesky", big)), 413)
    # 415 wrong content type
    h = signed_headers("bluesky", body) | {"content-type": "text/plain"}
    problem(httpx.post(ev, content=body, headers=h), 415)
    # 422 with the field path
    bad = fx("bluesky/commit.like.create.json")
    bad["commit"]["operation"] = "explode"
    errors = problem(post(url, "bluesky", bad), 422)["errors"]
    assert any(e["pointer"] == "/commit/operation" for e in errors)
    # 422: not UTF-8, too deeply nested; unknown fields are fine
    for hostile in (b"\xff\xfe{}", b"[" * 3000 + b"]" * 3000):
        problem(httpx.post(ev, content=hostile, headers=signed_headers("bluesky", hostile)), 422)
    huge = fx("bluesky/commit.post.create.reply.json")
    huge["commit"]["record"]["text"] = "x" * 900_000  # under the body limit, over the field's
    errors = problem(post(url, "bluesky", huge), 422)["errors"]
    assert errors[0]["pointer"] == "/commit/record/text"
    extra = fx("bluesky/commit.like.create.json") | {"brand_new_field": {"x": [1, 2]}}

    ok(post(url, "bluesky", extra))
    # Slack's url_verification is answered with the challenge
    challenge = fx("slack/url_verification.json")
    r = post(url, "slack", challenge)
    assert r.status_code == 200 and r.json() == {"challenge": challenge["challenge"]}
    # GitHub events realconnect does not read are acknowledged without effect
    r = post(url, "github", {"zen": "Keep it logically awesome.", "hook_id": 1}, event="ping")
    assert r.status_code == 202 and r.json()["status"] == "ignored"


def test_rate_limit_answers_429_with_retry_after(servers: None, tmp_path: Path) -> None:
    settings = settings_for(new_namespace())
    asyncio.run(ensure_topics(settings))
    s = ServiceStack(
        settings,
        tmp_path,
        ("ingest",),
        REALCONNECT_SOURCES__PHONE__RATE_PER_S="0.5",
        REALCONNECT_SOURCES__PHONE__BURST="3",
    )
    try:
        s.start()
        sms = {
            "type": "sms",
            "id": "s",
            "from": "+4511",
            "to": "+4522",
            "sent_at": "2026-03-01T09:00:00+00:00",
        }
        codes = [
            post(s.url("ingest"), "phone", sms | {"id": f"s{i}"}).status_code for i in range(6)
        ]
        assert codes[:3] == [202, 202, 202]
        assert 429 in codes[3:]
        r = post(s.url("ingest"), "phone", sms | {"id": "late"})
        assert problem(r, 429) and int(r.headers["retry-after"]) >= 1
    finally:
        s.stop()


def test_people_api_needs_the_admin_token_and_valid_fields(stack: ServiceStack) -> None:
    url = stack.url("ingest")
    admin = {"authorization": "Bearer dev-admin-token"}
    problem(httpx.put(f"{url}/v1/people/ann", json={"city": "Lisbon"}), 401)
    problem(
        httpx.put(
            f"{url}/v1/people/ann",
            json={"city": "Lisbon"},
            headers={"authorization": "Bearer wrong"},
        ),
        401,
    )
    problem(
        httpx.put(f"{url}/v1/people/ann", json={"time_zone": "Mars/Olympus"}, headers=admin), 422
    )
    r = httpx.put(
        f"{url}/v1/people/ann", json={"city": "Lisbon", "time_zone": "Europe/Lisbon"}, headers=admin
    )
    assert r.status_code == 200 and r.json()["city"] == "Lisbon"
    r = httpx.put(
        f"{url}/v1/people/ann/identities/reddit", json={"handle": "u/Ann_X"}, headers=admin
    )
    assert r.json()["handle"] == "reddit:u/ann_x"
    problem(
        httpx.put(f"{url}/v1/people/ann/identities/myspace", json={"handle": "a"}, headers=admin),
        422,
    )


async def test_linked_identities_make_one_person(stack: ServiceStack) -> None:
    settings = stack.settings
    url = stack.url("ingest")
    admin = {"authorization": "Bearer dev-admin-token"}
    for person, source, handle in [
        ("p:ann", "discord", "134127815531560960"),
        ("p:ben", "discord", "344487830824943618"),
    ]:
        r = httpx.put(
            f"{url}/v1/people/{person}/identities/{source}", json={"handle": handle}, headers=admin
        )
        assert r.status_code == 200, r.text
    t = Topics(settings)
    await wait_caught_up(
        settings, t.identities, t.app_id("normalizer"), asyncio.get_running_loop().time() + 30, 0.2
    )
    body = discord_reply()
    body["d"]["id"] = "111222333444555666"
    ok(post(url, "discord", body))
    got = await interactions(settings, expected=1, timeout=30, settle=1)
    mine = [i for i in got if i["event_id"].startswith("discord:111222333444555666/")]
    assert [(i["actor"], i["target"], i["_key"]) for i in mine] == [
        ("p:ann", "p:ben", "p:ann|p:ben")
    ]


async def test_automated_accounts_an_operator_lists_weigh_nothing(stack: ServiceStack) -> None:
    """A Reddit bot the platform does not flag: listed through the admin API, its comments
    arrive flagged (weighing nothing) and answers to it are not interactions."""
    url, admin = stack.url("ingest"), {"authorization": "Bearer dev-admin-token"}
    path = f"{url}/v1/automated-accounts/reddit"
    problem(httpx.put(path, json={"handle": "u/HelperBot_X"}), 401)
    r = httpx.put(path, json={"handle": "u/HelperBot_X"}, headers=admin)
    assert r.status_code == 200, r.text
    assert "reddit:u/helperbot_x" in r.json()["listed"]
    assert "reddit:u/automoderator" in r.json()["built_in"]

    thread = fx("reddit/thread.submission_with_comment_and_reply.json")
    submission = thread[0]["data"]["children"][0]["data"]
    top = thread[1]["data"]["children"][0]["data"]  # paneer_burrito on bboe's post
    reply = top["replies"]["data"]["children"][0]["data"]  # bboe answers paneer_burrito
    submission.update(name="t3_botq1", id="botq1")
    top.update(
        name="t1_botq2", id="botq2", author="HelperBot_X", link_id="t3_botq1", parent_id="t3_botq1"
    )
    reply.update(name="t1_botq3", id="botq3", link_id="t3_botq1", parent_id="t1_botq2")
    ok(post(url, "reddit", thread))

    def seen(found: list[dict[str, Any]]) -> bool:
        return any(i["event_id"].startswith("reddit:t1_botq2/") for i in found)

    got = await interactions(stack.settings, timeout=30, settle=2.0, until=seen)
    bot = [i for i in got if i["event_id"].startswith("reddit:t1_botq2/")]
    assert [(i["actor"], i["target"], i["actor_bot"]) for i in bot] == [
        ("reddit:u/helperbot_x", "reddit:u/bboe", True)
    ]
    assert not [i for i in got if i["event_id"].startswith("reddit:t1_botq3/")]  # to the bot

    r = httpx.delete(path, params={"handle": "u/HelperBot_X"}, headers=admin)
    assert r.status_code == 200 and "reddit:u/helperbot_x" not in r.json()["listed"]
