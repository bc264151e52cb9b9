"""Sources III through the running ingest, normalizer and matcher, on the real Kafka and
Redis: a three-person Slack group DM becomes the pair exchanges (its members listed by a Slack
Web API server on loopback, through slack_sdk, after a 429) and, kept up for weeks, a group
meetup; GitHub code review and answers become exchanges; a reaction to the installation's bot
is none; the deliveries realconnect does not read are answered 202, counted, not stored.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from services import pipeline
from services.common.kafka import ensure_topics
from tests.conftest import _check_servers, new_namespace, settings_for, unavailable
from tests.people import ADMIN
from tests.stack import ServiceStack
from tests.webhooks import interactions, post

FRESH = Path(__file__).parents[1] / "fixtures" / "sources"
TEAM, GROUP = "T123ABC456", "G024BE91L"


def load(path: str) -> Any:
    return json.loads((FRESH / path).read_text())


class SlackApi:
    """``conversations.members`` as Slack's Web API answers it (one 429 with Retry-After
    first, as Slack rate-limits; ``channel_not_found`` for another conversation), with the
    calls kept."""

    def __init__(self, channel: str, members: list[str]) -> None:
        self.calls: list[tuple[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # slack_sdk asks with GET and a query string
                outer.calls.append((self.path, self.headers.get("authorization", "")))
                if len(outer.calls) == 1:
                    self.send_response(429)
                    self.send_header("Retry-After", "1")
                    self.end_headers()
                    return
                if f"channel={channel}&" in self.path:
                    answer = {
                        "ok": True,
                        "members": members,
                        "response_metadata": {"next_cursor": ""},
                    }
                else:
                    answer = {"ok": False, "error": "channel_not_found"}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def slack_api() -> Iterator[SlackApi]:
    api = SlackApi(GROUP, ["U1", "U2", "U3", "UBOT"])
    yield api
    api.server.shutdown()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, slack_api: SlackApi) -> Iterator[ServiceStack]:
    problem = asyncio.run(_check_servers())
    if problem:
        unavailable(problem)
    settings = settings_for(new_namespace())
    asyncio.run(ensure_topics(settings))
    s = ServiceStack(
        settings,
        tmp_path_factory.mktemp("sources3"),
        ("ingest", "normalizer", "matcher", "feeds"),
        REALCONNECT_SOURCES__SLACK__API_TOKEN="xoxb-test-token",
        REALCONNECT_SOURCES__SLACK__API_URL=slack_api.url,
    )
    try:
        s.start()
        yield s
    finally:
        s.stop()


def group_message(user: str, ts: str, text: str) -> dict[str, Any]:
    body = load("slack/event_callback.message.mpim.docs.json")
    body["team_id"] = TEAM
    body["authed_users"] = []
    body["authorizations"] = [{"user_id": "UBOT", "is_bot": True}]  # a bot-token install
    body["event"].update(user=user, ts=ts, event_ts=ts, text=text)
    return body


def later_ts(at: datetime) -> str:
    return f"{at.timestamp():.6f}"


def accepted(r: httpx.Response) -> None:
    assert r.status_code == 202 and r.json()["status"] == "accepted", r.text


async def test_a_three_person_group_dm_gives_every_pair_exchange(
    stack: ServiceStack, slack_api: SlackApi
) -> None:
    url = stack.url("ingest")
    said = [
        ("U1", "1780000000.000100", "shall we try the new ramen place on Friday?"),
        ("U2", "1780000060.000100", "yes! I can book a table for three at seven"),
        ("U3", "1780000120.000100", "count me in, I'll bring the board game too"),
    ]
    for user, ts, text in said:
        accepted(post(url, "slack", group_message(user, ts, text)))

    def who(u: str) -> str:
        return f"slack:{TEAM}:{u}"

    want = {(who(a), who(b)) for a in ("U1", "U2", "U3") for b in ("U1", "U2", "U3") if a != b}
    found = await interactions(
        stack.settings,
        until=lambda got: (
            want <= {(i["actor"], i["target"]) for i in got if i["kind"] == "message"}
        ),
        timeout=60,
    )
    messages = [i for i in found if i["source"] == "slack" and i["thread_id"] is None]
    # each of the three messages to each of the two others; nobody writes to the app's bot
    assert sorted((i["actor"], i["target"]) for i in messages) == sorted(want)
    assert all(i["kind"] == "message" and i["recipients"] == 2 for i in messages)
    assert len({i["event_id"] for i in messages}) == 6
    # the members came from the Web API once (after its 429 and Retry-After), then the cache
    asked = f"/api/conversations.members?channel={GROUP}&limit=200"
    assert [path for path, _ in slack_api.calls if path == asked] == [asked] * 2
    assert all(auth == "Bearer xoxb-test-token" for _, auth in slack_api.calls)


async def test_code_review_and_answers_are_exchanges(stack: ServiceStack) -> None:
    url = stack.url("ingest")
    # a push teaches who wrote the commit; a comment on it by someone else is addressed to them
    accepted(post(url, "github", load("github/push.with-new-branch.json"), event="push"))
    comment = load("github/commit_comment.created.json")
    comment["comment"]["user"] = {"login": "octocat", "type": "User"}
    comment["comment"]["id"] = 33548675
    review = load("github/pull_request_review.submitted.json")
    review["review"]["user"] = {"login": "octocat", "type": "User"}
    review["review"]["body"] = "The README change reads well; the second paragraph could go."
    sends = [
        (comment, "commit_comment"),
        (review, "pull_request_review"),
        (load("github/discussion.answered.json"), "discussion"),
    ]
    await asyncio.sleep(1)  # the push is normalised first: the directory knows the commit
    for body, event in sends:
        accepted(post(url, "github", body, event=event))
    want = {
        ("comment", "github:octocat", "github:codertocat"),
        ("like", "github:codertocat", "github:dan2wik"),
    }
    found = await interactions(
        stack.settings,
        until=lambda got: sum(1 for i in got if (i["kind"], i["actor"], i["target"]) in want) >= 3,
        timeout=60,
    )
    github = sorted(
        (i["kind"], i["actor"], i["target"], i["thread_id"])
        for i in found
        if i["source"] == "github"
    )
    sha = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    assert github == [
        ("comment", "github:octocat", "github:codertocat", "github:Codertocat/Hello-World#2"),
        ("comment", "github:octocat", "github:codertocat", f"github:Codertocat/Hello-World@{sha}"),
        ("like", "github:codertocat", "github:dan2wik", None),
    ]


def test_what_realconnect_does_not_read_is_acknowledged_and_counted(stack: ServiceStack) -> None:
    url = stack.url("ingest")
    channel_created = {
        "type": "event_callback",
        "team_id": TEAM,
        "event": {"type": "channel_created", "channel": {"id": "C024BE91L", "name": "fun"}},
    }
    admin_report = {
        "id": "34975861",
        "type": "admin.report",
        "created_at": "2026-07-04T12:00:00.000Z",
        "account": {"id": "1", "acct": "reporter"},
        "report": {"id": "48914", "category": "spam"},
    }
    ignored = [
        ("slack", load("slack/app_rate_limited.docs.json"), {}),
        ("slack", channel_created, {}),
        ("github", load("github/discussion.created.json"), {"event": "discussion"}),
        ("github", {"zen": "Design for failure.", "hook_id": 1}, {"event": "ping"}),
        ("mastodon", admin_report, {}),
        ("discord", {"op": 0, "t": "MESSAGE_UPDATE", "s": 7, "d": {"id": "1"}}, {}),
    ]
    for source, body, kw in ignored:
        r = post(url, source, body, **kw)
        assert r.status_code == 202 and r.json()["status"] == "ignored", (source, r.text)
    metrics = httpx.get(f"{url}/metrics/", headers=ADMIN, timeout=10).text
    for line in (
        'realconnect_webhook_ignored_total{kind="app_rate_limited",source="slack"} 1.0',
        'realconnect_webhook_ignored_total{kind="event_callback/channel_created",source="slack"}',
        'realconnect_webhook_ignored_total{kind="admin.report",source="mastodon"} 1.0',
        'realconnect_webhook_ignored_total{kind="MESSAGE_UPDATE",source="discord"} 1.0',
        'realconnect_webhook_ignored_total{kind="ping",source="github"} 1.0',
    ):
        assert line in metrics, line
    # bad input is still refused: a body that is not JSON, and a wrong signature
    assert post(url, "slack", b"{not json").status_code == 422
    assert post(url, "slack", channel_created, secret="wrong").status_code == 401


async def test_a_reaction_to_the_installations_bot_is_no_exchange(stack: ServiceStack) -> None:
    """The bot answers a slash command (a message of type 20, flagged ``bot``); a reaction to
    that answer names only the author's id. The normalizer remembered the flag, so the
    reaction is no exchange; a reaction to a person's message in the same batch is."""
    url = stack.url("ingest")
    answer = {
        "op": 0,
        "t": "MESSAGE_CREATE",
        "d": {
            "id": "1300000000000000001",
            "channel_id": "1200000000000000001",
            "type": 20,
            "author": {"id": "999000000000000001", "username": "meetbot", "bot": True},
            "content": "Your meetup is on Friday",
            "timestamp": "2026-07-04T12:00:00.000000+00:00",
        },
    }
    accepted(post(url, "discord", answer))
    await asyncio.sleep(1)

    def reaction(message: str, author: str) -> dict[str, Any]:
        return {
            "op": 0,
            "t": "MESSAGE_REACTION_ADD",
            "d": {
                "user_id": "111000000000000001",
                "message_id": message,
                "channel_id": "1200000000000000001",
                "message_author_id": author,
                "emoji": {"id": None, "name": "👍"},
            },
        }

    accepted(post(url, "discord", reaction("1300000000000000001", "999000000000000001")))
    accepted(post(url, "discord", reaction("1300000000000000002", "222000000000000001")))
    found = await interactions(
        stack.settings,
        until=lambda got: any(i["target"] == "discord:222000000000000001" for i in got),
        settle=2.0,
        timeout=60,
    )
    likes = [(i["actor"], i["target"]) for i in found if i["source"] == "discord"]
    assert likes == [("discord:111000000000000001", "discord:222000000000000001")]


async def test_a_group_dm_that_goes_on_for_weeks_seeds_a_group_meetup(stack: ServiceStack) -> None:
    """Three people plan things in a group DM twice a week for four weeks: every pair of them
    exchanges both ways, and the matcher (the shipped model and its default gate) suggests the
    three as one group."""
    url = stack.url("ingest")
    group = "G0TRIO0001"
    start = datetime.now(UTC) - timedelta(weeks=5)
    lines = {
        "U7": "I can book the climbing gym for Thursday evening, does seven work for you both?",
        "U8": "Seven works for me; I'll bring the spare harness and the chalk bags we discussed.",
        "U9": "Great, I'll drive us there and we could try that new noodle place afterwards.",
    }
    for week in range(4):
        for day in (1, 4):
            for n, (user, text) in enumerate(lines.items()):
                at = start + timedelta(weeks=week, days=day, minutes=7 * n)
                body = group_message(user, later_ts(at), text)
                body["event"]["channel"] = group
                body["authed_users"] = ["U7", "U8", "U9"]  # a user-token install: all three
                body["authorizations"] = []
                accepted(post(url, "slack", body))
    await pipeline.drain_matcher(stack.settings, timeout=120)
    members = tuple(f"slack:{TEAM}:{u}" for u in ("U7", "U8", "U9"))
    groups = await pipeline.read_groups(stack.settings, idle_s=2.0)
    assert [g.members for g in groups] == [members]


async def test_people_without_a_profile_are_named_as_their_platform_shows_them(
    stack: ServiceStack,
) -> None:
    """Issue 41 (5): Mastodon's documented status is Eugen's (display_name "Eugen", handle
    Gargron): the normalizer keeps the name, the feed store names him by it; a profile's name
    comes first; forgetting him removes both."""
    from urllib.parse import quote

    from services.common.redis import Keys, new_redis
    from services.notifier.store import FeedStore

    gargron = "mastodon:@gargron@mastodon.social"
    r = post(stack.url("ingest"), "mastodon", load("mastodon/status.docs.json"))
    assert r.status_code == 202, r.text
    redis = new_redis(stack.settings)
    store = FeedStore(redis, Keys(stack.settings), cap=100)
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while (names := await store.names([gargron, "mastodon:@nobody@x.social"])) == {}:
            assert asyncio.get_running_loop().time() < deadline, "the name never arrived"
            await asyncio.sleep(0.3)
        assert names == {gargron: "Eugen"}
        path = quote(gargron, safe="")
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.put(
                f"{stack.url('ingest')}/v1/people/{path}",
                json={"display_name": "Eugen Rochko"},
                headers=ADMIN,
            )
            assert r.status_code == 200, r.text
            assert await store.names([gargron]) == {gargron: "Eugen Rochko"}
            r = await http.delete(f"{stack.url('feeds')}/v1/people/{path}", headers=ADMIN)
            assert r.status_code == 204, r.text
        assert await store.names([gargron]) == {}
        assert await redis.hget(Keys(stack.settings).platform_names, gargron) is None
    finally:
        await redis.aclose()
