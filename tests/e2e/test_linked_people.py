"""A person linked on two platforms who talks to the same person on both is one pair; once
they unlink one account themselves, what it does is no longer theirs."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.common.kafka import Topics
from services.pipeline import wait_caught_up
from tests.people import admin_feed, opt_in, token_for
from tests.stack import ServiceStack
from tests.webhooks import interactions, post

DAY1 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
HANDLES = {
    "p:ann": {"mastodon": "@ann@a.social", "slack": "T9:UANN"},
    "p:ben": {"mastodon": "@ben@b.social", "slack": "T9:UBEN"},
}
ACCOUNTS = {
    "p:ann": ("1", "ann@a.social", "https://a.social/@ann"),
    "p:ben": ("2", "ben@b.social", "https://b.social/@ben"),
}


#: Identity resolution across platforms, with webhooks posted over two days: too young for
#: the shipped model's bar (about six weeks of contact), rightly. The rule gates decide here;
#: the default gate runs end to end in test_pipeline.py.
PIPELINE_ENV = {"REALCONNECT_MATCHER__MIN_PROBABILITY": "0"}


def mastodon_reply(n: int, author: str, to: str, at: datetime) -> dict[str, Any]:
    aid, acct, url = ACCOUNTS[author]
    tid, tacct, turl = ACCOUNTS[to]
    return {
        "id": f"9{n}",
        "created_at": at.isoformat(),
        "in_reply_to_id": f"9{n - 1}",
        "in_reply_to_account_id": tid,
        "visibility": "public",
        "content": f"<p>@{tacct.split('@')[0]} here is my considered answer number {n}?</p>",
        "account": {"id": aid, "acct": acct, "url": url},
        "mentions": [{"id": tid, "username": tacct.split("@")[0], "acct": tacct, "url": turl}],
    }


def slack_reply(author: str, to: str, at: datetime) -> dict[str, Any]:
    user, parent = HANDLES[author]["slack"].split(":")[1], HANDLES[to]["slack"].split(":")[1]
    ts = f"{at.timestamp():.6f}"
    return {
        "type": "event_callback",
        "team_id": "T9",
        "event_id": f"Ev{ts}",
        "event": {
            "type": "message",
            "user": user,
            "text": "that sounds great, when?",
            "ts": ts,
            "thread_ts": "1777885200.000100",
            "parent_user_id": parent,
            "channel": "C9",
            "channel_type": "channel",
        },
    }


def test_one_pair_across_mastodon_and_slack(pipeline_stack: ServiceStack) -> None:
    url = pipeline_stack.url("ingest")
    admin = {"authorization": "Bearer dev-admin-token"}
    for person, handles in HANDLES.items():
        for source, handle in handles.items():
            r = httpx.put(
                f"{url}/v1/people/{person}/identities/{source}",
                json={"handle": handle},
                headers=admin,
            )
            assert r.status_code == 200, r.text
    for person in HANDLES:
        opt_in(pipeline_stack.url("feeds"), person)
    settings = pipeline_stack.settings
    t = Topics(settings)
    asyncio.run(
        wait_caught_up(settings, t.identities, t.app_id("normalizer"), time.monotonic() + 60, 0.2)
    )

    turns = [("p:ann", "p:ben"), ("p:ben", "p:ann"), ("p:ann", "p:ben")]
    for n, (a, b) in enumerate(turns, start=1):
        assert (
            post(url, "mastodon", mastodon_reply(n, a, b, DAY1 + timedelta(hours=n))).status_code
            == 202
        )
    for n, (a, b) in enumerate(turns, start=1):
        day2 = DAY1 + timedelta(days=1, hours=n)
        assert post(url, "slack", slack_reply(b, a, day2)).status_code == 202

    deadline = time.monotonic() + 60
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not items:
        items = admin_feed(pipeline_stack.url("feeds"), "p:ann")
        time.sleep(0.3)
    assert len(items) == 1, items
    item = items[0]
    assert item["other_person_id"] == "p:ben"
    assert item["evidence"]["sources"] == ["mastodon", "slack"]
    assert item["evidence"]["exchanges"] == {"p:ann->p:ben": 3, "p:ben->p:ann": 3}
    assert "on Mastodon and Slack" in item["explanation"]
    ben = admin_feed(pipeline_stack.url("feeds"), "p:ben")
    assert [i["item_id"] for i in ben] == [item["item_id"]]

    # ann unlinks her Slack account herself: what it does from now on is no longer hers
    auth = token_for(pipeline_stack.url("feeds"), "p:ann")
    handle = "slack:T9:UANN"
    r = httpx.delete(f"{pipeline_stack.url('feeds')}/v1/me/links/{handle}", headers=auth)
    assert r.status_code == 204, r.text
    assert httpx.get(f"{pipeline_stack.url('feeds')}/v1/me/links", headers=auth).json() == {
        "handles": ["mastodon:@ann@a.social"],
        "pending": None,
    }
    asyncio.run(
        wait_caught_up(settings, t.identities, t.app_id("normalizer"), time.monotonic() + 60, 0.2)
    )
    later = DAY1 + timedelta(days=2)
    assert post(url, "slack", slack_reply("p:ann", "p:ben", later)).status_code == 202
    found = asyncio.run(
        interactions(
            settings, until=lambda xs: any(x["occurred_at"].startswith("2026-05-06") for x in xs)
        )
    )
    [after] = [x for x in found if x["occurred_at"].startswith("2026-05-06")]
    assert (after["actor"], after["target"]) == (handle, "p:ben")
