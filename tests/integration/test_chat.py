"""Suggestions by direct message on Slack and Discord, answered with their buttons, through the
real Kafka, Redis, matcher, notifier and feeds service, against local servers that speak each
platform's API (tests/chat_platforms.py): a person links their account with the code the bot
sends, gets each new item as a DM with buttons (after the platform's 429), answers with a
signed button press, and the answer is the page's answer (the item, the matcher's feedback
record, the meetup), once however often it is pressed; the message is updated after it."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from schemas.suggestions import Suggestion
from services import pipeline
from services.common.kafka import Topics
from services.explain import explain
from tests.chat_platforms import DiscordServer, SlackServer, sign_slack
from tests.integration.test_email import suggestion
from tests.integration.test_matcher_decisions import produce, records, six_weeks
from tests.integration.test_notifier_feeds import send
from tests.people import ADMIN, opt_in
from tests.stack import ServiceStack, fresh_stack
from tests.webhooks import read_topic

pytestmark = pytest.mark.integration
T = TypeVar("T")


@pytest.fixture(scope="module")
def platforms() -> Iterator[tuple[SlackServer, DiscordServer]]:
    slack, discord = SlackServer(), DiscordServer()
    yield slack, discord
    slack.close()
    discord.close()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, platforms: tuple[SlackServer, DiscordServer]
) -> Iterator[ServiceStack]:
    slack, discord = platforms
    env = {
        "REALCONNECT_CHAT__SLACK_TOKEN": slack.TOKEN,
        "REALCONNECT_CHAT__SLACK_SIGNING_SECRETS": json.dumps([slack.SECRET]),
        "REALCONNECT_CHAT__SLACK_API_URL": slack.api,
        "REALCONNECT_CHAT__DISCORD_TOKEN": discord.TOKEN,
        "REALCONNECT_CHAT__DISCORD_PUBLIC_KEY": discord.public_key,
        "REALCONNECT_CHAT__DISCORD_API_URL": discord.api,
        "REALCONNECT_CHAT__BACKOFF_S": "0.2",
    }
    services = ("matcher", "feeds", "notifier")
    with fresh_stack(tmp_path_factory.mktemp("chat"), services, **env) as s:
        yield s


def eventually(what: str, probe: Callable[[], T | None], timeout: float = 30) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := probe()) is not None and found != []:
            return found
        time.sleep(0.1)
    raise AssertionError(f"never: {what}")


def person(stem: str) -> str:
    return f"{stem}-{secrets.token_hex(4)}"


def link(
    feeds: str, auth: dict[str, str], platform: str, account: str, dms: Callable[[], list[Any]]
) -> str:
    """Link an account as a person does: ask for a code, read it in the bot's DM, enter it."""
    before = len(dms())
    r = httpx.post(
        f"{feeds}/v1/me/links",
        json={"platform": platform, "account": account},
        headers=auth,
        timeout=10,
    )
    assert r.status_code == 202, r.text
    dm = dms()[before]
    text = dm.get("text") or dm.get("content") or ""
    code = re.search(r"\b(\d{6})\b", text)
    assert code, text
    r = httpx.post(
        f"{feeds}/v1/me/links/confirm", json={"code": code.group(1)}, headers=auth, timeout=10
    )
    assert r.status_code == 200, r.text
    handle: str = r.json()["handles"][0]
    return handle


def item_of(feeds: str, auth: dict[str, str], item_id: str) -> dict[str, Any]:
    items = httpx.get(f"{feeds}/v1/me/feed", headers=auth, timeout=10).json()["items"]
    [found] = [i for i in items if i["item_id"] == item_id]
    return found


def feedback_of(stack: ServiceStack, suggestion_id: str, expected: int) -> list[dict[str, Any]]:
    t = Topics(stack.settings)
    records = asyncio.run(read_topic(stack.settings, t.feedback, expected=expected, settle=2.0))
    values = [json.loads(r.value) for r in records]
    return [v for v in values if v["suggestion_id"] == suggestion_id]


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def test_slack_link_dm_with_buttons_after_a_429_answer_once_and_the_message_updated(
    stack: ServiceStack, platforms: tuple[SlackServer, DiscordServer]
) -> None:
    slack, _ = platforms
    feeds = stack.url("feeds")
    ann, ben, cy = person("ann"), person("ben"), person("cy")
    slack.users |= {"U0ANN0001", "U0CY00001"}
    ann_auth = opt_in(feeds, ann, channels=["page", "slack"], language="de")
    ben_auth = opt_in(feeds, ben)
    cy_auth = opt_in(feeds, cy, channels=["page", "slack"])
    # a wrong account id is said so, and nothing is sent
    r = httpx.post(
        f"{feeds}/v1/me/links",
        json={"platform": "slack", "account": "nobody"},
        headers=ann_auth,
        timeout=10,
    )
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    handle = link(
        feeds, ann_auth, "slack", f"{slack.team}:U0ANN0001", lambda: slack.dms("U0ANN0001")
    )
    assert handle == f"slack:{slack.team}:U0ANN0001"
    link(feeds, cy_auth, "slack", f"{slack.team}:U0CY00001", lambda: slack.dms("U0CY00001"))
    # a code nobody was sent is refused
    r = httpx.post(
        f"{feeds}/v1/me/links/confirm", json={"code": "000000"}, headers=ben_auth, timeout=10
    )
    assert r.status_code == 422

    slack.refuse.count, slack.refuse.retry_after = 1, 1
    s = suggestion(ann, ben)
    asyncio.run(send(stack.settings, s))
    [dm] = eventually("ann's DM", lambda: [m for m in slack.dms("U0ANN0001") if "blocks" in m])
    posted_at = next(
        t for m, t in slack.calls if m == "chat.postMessage" and t > slack.refuse.at[0]
    )
    assert posted_at - slack.refuse.at[0] >= 1.0  # Slack's Retry-After, honoured
    # in her language (German), with her answer buttons
    assert dm["blocks"][0]["text"]["text"].startswith(f"*Möchtest du {ben} treffen?*")
    labels = {b["value"].split("|")[1]: b["text"]["text"] for b in buttons(dm)}
    assert labels == {
        "accept": "Ja, ich würde mich gern treffen",
        "decline": "Nein, danke",
        "snooze": "In 3 Tagen noch mal fragen",
    }
    ts = next(t for (c, t), m in slack.messages.items() if m is dm)
    accept = next(b for b in buttons(dm) if b["value"].endswith("|accept"))

    with httpx.Client(base_url=feeds, timeout=10) as client:
        # a forged press is refused before it is read
        headers, body = slack.press("U0ANN0001", ts, accept)
        bad = {**headers, "x-slack-signature": "v0=" + "0" * 64}
        assert (
            client.post("/v1/chat/slack/interactions", headers=bad, content=body).status_code == 401
        )
        stale = sign_slack(body, slack.SECRET, int(time.time()) - 600)
        assert (
            client.post("/v1/chat/slack/interactions", headers=stale, content=body).status_code
            == 401
        )
        # cy presses ann's button (a forwarded message): not cy's item, nothing recorded
        headers, body = slack.press("U0CY00001", ts, accept)
        assert (
            client.post("/v1/chat/slack/interactions", headers=headers, content=body).status_code
            == 200
        )
        said = eventually("the ephemeral refusal", lambda: slack.responses)
        assert said[-1]["response_type"] == "ephemeral" and "No such item" in said[-1]["text"]
        # ann presses twice (a double click): within Slack's 3 seconds each, one answer
        for _ in range(2):
            headers, body = slack.press("U0ANN0001", ts, accept)
            started = time.monotonic()
            r = client.post("/v1/chat/slack/interactions", headers=headers, content=body)
            assert r.status_code == 200 and time.monotonic() - started < 3.0
    assert item_of(feeds, ann_auth, s.suggestion_id)["response"] == "accepted"
    assert item_of(feeds, ben_auth, s.suggestion_id)["response"] is None
    answers = [f for f in feedback_of(stack, s.suggestion_id, 1) if f["person_id"] == ann]
    assert [f["outcome"] for f in answers] == ["accepted"]  # once, however often pressed
    # the message now says her answer back, with no buttons to press again
    updated = eventually("the updated message", lambda: [u for u in slack.updates if u["ts"] == ts])
    assert not buttons(updated[-1])
    assert "Du hast ja gesagt" in json.dumps(updated[-1]["blocks"], ensure_ascii=False)

    # ben says yes on the page: the meetup is on, and ann's DM about it offers "We met"
    r = httpx.post(f"{feeds}/v1/me/feed/{s.suggestion_id}/accept", headers=ben_auth, timeout=10)
    assert r.status_code == 200, r.text
    mutual = eventually(
        "the meetup's DM",
        lambda: [
            m
            for (c, t), m in slack.messages.items()
            if c == "DU0ANN0001" and t != ts and "blocks" in m
        ],
    )
    assert [b["value"].split("|")[1] for b in buttons(mutual[-1])] == ["met"]


def test_discord_ping_signed_press_updates_the_message_unlink_stops_it(
    stack: ServiceStack, platforms: tuple[SlackServer, DiscordServer]
) -> None:
    _, discord = platforms
    feeds = stack.url("feeds")
    dee, eve = person("dee"), person("eve")
    dee_id = "200000000000000001"
    discord.users.add(dee_id)
    dee_auth = opt_in(feeds, dee, channels=["page", "discord"])
    opt_in(feeds, eve)
    handle = link(feeds, dee_auth, "discord", dee_id, lambda: discord.dms(dee_id))
    assert handle == f"discord:{dee_id}"

    discord.refuse.count, discord.refuse.retry_after = 1, 1
    s = suggestion(dee, eve)
    asyncio.run(send(stack.settings, s))
    [dm] = eventually("dee's DM", lambda: [m for m in discord.dms(dee_id) if m.get("components")])
    sent_at = next(
        t
        for c, t in discord.calls
        if c.endswith(f"/channels/9{dee_id}/messages") and t > discord.refuse.at[0]
    )
    assert sent_at - discord.refuse.at[0] >= 1.0  # Discord's retry_after, honoured
    assert dm["allowed_mentions"] == {"parse": []}
    ids = [b["custom_id"] for b in dm["components"][0]["components"]]
    assert ids == [f"rc|{s.suggestion_id}|{a}" for a in ("accept", "decline", "snooze")]
    decline = ids[1]

    with httpx.Client(base_url=feeds, timeout=10) as client:
        headers, body = discord.interaction(1, dee_id)  # Discord's PING when the URL is saved
        r = client.post("/v1/chat/discord/interactions", headers=headers, content=body)
        assert r.status_code == 200 and r.json() == {"type": 1}
        bad = {**headers, "x-signature-ed25519": "00" * 64}
        assert (
            client.post("/v1/chat/discord/interactions", headers=bad, content=body).status_code
            == 401
        )
        tampered = body.replace(b'"type": 1', b'"type": 3')
        assert (
            client.post(
                "/v1/chat/discord/interactions", headers=headers, content=tampered
            ).status_code
            == 401
        )
        for _ in range(2):  # a double click: one answer, the same updated message
            headers, body = discord.interaction(3, dee_id, dm, decline)
            r = client.post("/v1/chat/discord/interactions", headers=headers, content=body)
            assert r.status_code == 200, r.text
            answer = r.json()
            assert answer["type"] == 7 and answer["data"]["components"] == []
            assert "You said no, thanks" in answer["data"]["content"]
    assert item_of(feeds, dee_auth, s.suggestion_id)["response"] == "declined"
    answers = [f for f in feedback_of(stack, s.suggestion_id, 1) if f["person_id"] == dee]
    assert [f["outcome"] for f in answers] == ["declined"]

    # unlinked: the identity's tombstone reaches people.identities, and a press is refused
    r = httpx.delete(f"{feeds}/v1/me/links/{handle}", headers=dee_auth, timeout=10)
    assert r.status_code == 204, r.text
    t = Topics(stack.settings)
    records = asyncio.run(read_topic(stack.settings, t.identities, expected=2, settle=1.0))
    assert [r.value for r in records if r.key == handle.encode()][-1] is None
    with httpx.Client(base_url=feeds, timeout=10) as client:
        headers, body = discord.interaction(3, dee_id, dm, ids[0])
        r = client.post("/v1/chat/discord/interactions", headers=headers, content=body)
        assert r.json()["type"] == 4 and r.json()["data"]["flags"] == 64
        assert "not linked" in r.json()["data"]["content"]


def test_a_discord_user_who_blocks_dms_is_dead_lettered_not_retried(
    stack: ServiceStack, platforms: tuple[SlackServer, DiscordServer]
) -> None:
    _, discord = platforms
    feeds = stack.url("feeds")
    fay, gus = person("fay"), person("gus")
    fay_id = "200000000000000002"
    discord.users.add(fay_id)
    auth = opt_in(feeds, fay, channels=["page", "discord"])
    opt_in(feeds, gus)
    link(feeds, auth, "discord", fay_id, lambda: discord.dms(fay_id))
    discord.blocking.add(fay_id)
    s: Suggestion = suggestion(fay, gus)
    asyncio.run(send(stack.settings, s))
    t = Topics(stack.settings)

    def errors(records: list[Any]) -> list[str]:
        return [dict(r.headers).get("dlq.error", b"").decode() for r in records]

    dead = asyncio.run(
        read_topic(
            stack.settings,
            t.suggestions_dlq,
            until=lambda rs: any("Cannot send messages" in e for e in errors(rs)),
        )
    )
    [error] = [e for e in errors(dead) if "Cannot send messages" in e]
    assert "403" in error and "after 1 attempts" in error
    sends = [c for c, _ in discord.calls if c == f"POST /api/v10/channels/9{fay_id}/messages"]
    assert len(sends) == 2  # the code, and one attempt at the item: a 403 is not retried
    assert httpx.get(f"{feeds}/v1/people/{fay}/feed", headers=ADMIN, timeout=10).json()["items"]


def test_from_a_conversation_to_a_slack_answer_to_the_pair_s_state(
    stack: ServiceStack, platforms: tuple[SlackServer, DiscordServer]
) -> None:
    """The whole path, no browser: six weeks of talk reach the matcher, its suggestion reaches
    ann's Slack, her "No, thanks" is pressed there, and the matcher's state of the pair holds
    her answer (the 180-day decline cooldown starts from it)."""
    slack, _ = platforms
    feeds, settings = stack.url("feeds"), stack.settings
    ann, ben = person("ann"), person("ben")
    slack.users.add("U0HAL0001")
    auth = opt_in(feeds, ann, channels=["page", "slack"])
    opt_in(feeds, ben)
    link(feeds, auth, "slack", f"{slack.team}:U0HAL0001", lambda: slack.dms("U0HAL0001"))
    asyncio.run(produce(settings, Topics(settings).interactions, records(six_weeks(ann, ben))))
    asyncio.run(pipeline.drain_matcher(settings, timeout=90))
    [dm] = eventually(
        "the suggestion's DM", lambda: [m for m in slack.dms("U0HAL0001") if "blocks" in m]
    )
    ts = next(t for (c, t), m in slack.messages.items() if m is dm)
    decline = next(b for b in buttons(dm) if b["value"].endswith("|decline"))
    headers, body = slack.press("U0HAL0001", ts, decline)
    r = httpx.post(f"{feeds}/v1/chat/slack/interactions", headers=headers, content=body, timeout=10)
    assert r.status_code == 200, r.text
    suggestion_id = decline["value"].split("|")[0]
    assert item_of(feeds, auth, suggestion_id)["response"] == "declined"

    def answered() -> str | None:
        state = asyncio.run(explain(settings, ann, ben)).state
        return state.outcome if state.outcome is not None else None

    assert eventually("the matcher's state", answered, timeout=60) == "declined"
