"""Email with calendar invites, through a real SMTP server (aiosmtpd delivering to a Maildir,
started by ``deploy/stack.sh up infra``), with the real Kafka, Redis, notifier and feeds.

Each message is read back from the mailbox as a mail client would: headers, body, the
parsed invite; one-click unsubscribe; and a notifier SIGKILLed in the middle of a batch."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import httpx
import pytest
from icalendar import Calendar

from schemas.suggestions import Suggestion
from services.common.kafka import Topics
from services.pipeline import wait_caught_up
from tests.integration.test_notifier_feeds import send
from tests.mail import MAILDIR, delivered, everything, wait_for_mail
from tests.people import ADMIN, opt_in, sign_in, token_for
from tests.stack import ServiceStack, free_port, fresh_stack
from tests.webhooks import read_topic

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceStack]:
    with fresh_stack(tmp_path_factory.mktemp("email"), ("feeds", "notifier")) as s:
        yield s


def person(stem: str) -> str:
    return f"{stem}-{secrets.token_hex(4)}"


def address(p: str) -> str:
    return f"{p}@example.com"


def emailed(feeds: str, p: str, tz: str = "UTC") -> None:
    opt_in(feeds, p, time_zone=tz, email=address(p), channels=["page", "email"])


def suggestion(a: str, b: str, sid: str | None = None) -> Suggestion:
    pair = (a, b) if a < b else (b, a)
    return Suggestion(
        suggestion_id=sid or secrets.token_hex(16),
        pair=pair,
        score=0.7,
        suggested_at=NOW,
        evidence={
            "sources": ["mastodon"],
            "meetup": {"kind": "video_call", "time_zones": ["America/New_York", "Europe/Lisbon"]},
        },
        explanation="You two have traded 23 thoughtful replies over 7 weeks on Mastodon.",
    )


def text_of(msg: EmailMessage) -> str:
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def invite_of(msg: EmailMessage) -> Calendar:
    parts = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1, [p.get_content_type() for p in msg.walk()]
    assert parts[0].get_param("method") == "REQUEST"
    raw = parts[0].get_payload(decode=True)
    assert isinstance(raw, bytes)
    return Calendar.from_ical(raw)


def test_a_new_item_is_emailed_with_a_working_sign_in_link_and_one_click_unsubscribe(
    stack: ServiceStack,
) -> None:
    feeds = stack.url("feeds")
    ann, ben = person("ann"), person("ben")
    emailed(feeds, ann)
    opt_in(feeds, ben)  # ben did not choose email: nothing is sent to him
    s = suggestion(ann, ben)
    asyncio.run(send(stack.settings, s))

    [msg] = wait_for_mail(address(ann))
    assert msg["Subject"] == f"Meet {ben}? realconnect has a suggestion for you"
    assert msg["Message-ID"].endswith("@realconnect>")
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = text_of(msg)
    assert s.explanation in text
    # the link in the email signs ann in (once), and shows her the item
    link = next(line for line in text.splitlines() if "/app/signin?t=" in line)
    assert link.startswith(feeds)
    with httpx.Client(base_url=feeds, timeout=10) as browser:
        token = link.split("t=", 1)[1]
        assert browser.get("/app/signin", params={"t": token}).status_code == 200
        assert sign_in(browser, token).status_code == 303
        page = browser.get("/app")
        assert page.status_code == 200 and s.explanation in page.text
        assert browser.get("/app/signin", params={"t": token}).status_code == 410  # once only
    assert delivered(address(ben)) == []

    # one click (RFC 8058): the URL of the header, POSTed with the form body mail clients send
    url = msg["List-Unsubscribe"].strip("<>")
    r = httpx.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert r.status_code == 200, r.text
    prefs = httpx.get(
        f"{feeds}/v1/me/preferences", headers=token_for(feeds, ann), timeout=10
    ).json()
    assert prefs["channels"] == ["page"] and prefs["email"] == address(ann)
    # a forged link changes nothing
    forged = url.rsplit("&s=", 1)[0] + "&s=" + "0" * 32
    assert httpx.post(forged, timeout=10).status_code == 404
    # and the next item reaches ann's page only
    asyncio.run(send(stack.settings, suggestion(ann, person("cy"))))
    time.sleep(1.0)
    assert len(delivered(address(ann))) == 1


def test_a_mutual_meetup_is_an_invite_naming_both_with_a_stable_uid(stack: ServiceStack) -> None:
    feeds = stack.url("feeds")
    ann, ben = person("ann"), person("ben")
    emailed(feeds, ann, "Europe/Lisbon")
    emailed(feeds, ben, "America/New_York")
    s = suggestion(ann, ben)
    asyncio.run(send(stack.settings, s))
    wait_for_mail(address(ann))
    wait_for_mail(address(ben))
    for p in (ann, ben):
        r = httpx.post(
            f"{feeds}/v1/me/feed/{s.suggestion_id}/accept", headers=token_for(feeds, p), timeout=10
        )
        assert r.status_code == 200, r.text

    invites = {}
    for p, other in ((ann, ben), (ben, ann)):
        mails = wait_for_mail(address(p), count=2)
        [mutual] = [m for m in mails if "both said yes" in str(m["Subject"])]
        cal = invite_of(mutual)
        assert str(cal["method"]) == "REQUEST"
        [event] = cal.walk("VEVENT")
        invites[p] = event
        start, end = event.decoded("dtstart"), event.decoded("dtend")
        assert start.utcoffset() == timedelta(0) and end - start == timedelta(hours=1)
        # daytime (09-20 h) for both people, and each person's local time is in the text
        for zone in ("Europe/Lisbon", "America/New_York"):
            from zoneinfo import ZoneInfo

            assert 9 <= start.astimezone(ZoneInfo(zone)).hour < 20
            assert zone in str(event["description"])
        attendees = sorted(str(a) for a in event.get("attendee"))
        assert attendees == sorted(f"mailto:{address(x)}" for x in (ann, ben))
        assert str(event["organizer"]).startswith("mailto:")
        assert other in str(event["summary"])
    # the same event in both calendars
    assert str(invites[ann]["uid"]) == str(invites[ben]["uid"])


def test_a_notifier_killed_mid_batch_sends_every_email_and_none_again(
    stack: ServiceStack,
) -> None:
    feeds = stack.url("feeds")
    hub = person("hub")
    opt_in(feeds, hub, max_per_week=100)  # the most a week allows: the whole batch
    people = [person("p") for _ in range(100)]
    for p in people:
        emailed(feeds, p)
    items = [suggestion(hub, p) for p in people]

    async def produce() -> None:
        from services.common.kafka import new_producer

        producer = new_producer(stack.settings, client_id="test")
        await producer.start()
        try:
            for s in items:
                await producer.send(
                    Topics(stack.settings).suggestions,
                    key="|".join(s.pair).encode(),
                    value=s.model_dump_json().encode(),
                )
            await producer.flush()
        finally:
            await producer.stop()

    new = MAILDIR / "new"
    before = len(os.listdir(new))
    asyncio.run(produce())
    # kill the notifier as soon as the batch has begun to go out (a directory listing: fast
    # enough to catch a batch of 100 in flight)
    deadline = time.monotonic() + 60
    while len(os.listdir(new)) < before + 3:
        assert time.monotonic() < deadline, stack.tail("notifier")
        time.sleep(0.005)
    stack.kill("notifier")
    mail = everything()
    sent_before = sum(address(p) in mail for p in people)
    assert 0 < sent_before < len(people), "the kill missed the batch: nothing was tested"
    stack.start_one("notifier")
    stack.wait_ready("notifier")
    t = Topics(stack.settings)
    for topic in (t.suggestions, t.emails):
        asyncio.run(
            wait_caught_up(stack.settings, topic, t.app_id("notifier"), time.monotonic() + 90, 0.2)
        )
    deadline = time.monotonic() + 60
    while True:
        mail = everything()
        missing = [p for p in people if address(p) not in mail]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert missing == []
    per_person = {p: mail[address(p)] for p in people}
    ids = Counter(str(m["Message-ID"]) for got in per_person.values() for m in got)
    assert len(ids) == len(people)  # every item's message, none lost...
    # ...and none sent again: the jobs the restarted notifier re-reads were marked sent. The
    # one exception SMTP allows is the message in flight at the kill, if the server had
    # accepted it and the marker was not yet written (a window of about a millisecond): it
    # is then the same message (same Message-ID), which mail clients show once.
    again = [k for k, n in ids.items() if n > 1]
    assert len(again) <= 1 and all(ids[k] == 2 for k in again), again


def test_an_unreachable_smtp_server_dead_letters_the_email(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Retries with backoff, then notifications.dlq: nothing silently vanishes."""
    with fresh_stack(
        tmp_path_factory.mktemp("email-down"),
        ("feeds", "notifier"),
        REALCONNECT_EMAIL__PORT=str(free_port()),  # nobody listens there
        REALCONNECT_EMAIL__ATTEMPTS="2",
        REALCONNECT_EMAIL__BACKOFF_S="0.1",
    ) as s:
        settings = s.settings
        feeds = s.url("feeds")
        ann, ben = person("ann"), person("ben")
        emailed(feeds, ann)
        opt_in(feeds, ben)
        asyncio.run(send(settings, suggestion(ann, ben)))
        letters = asyncio.run(
            read_topic(settings, Topics(settings).suggestions_dlq, expected=1, timeout=60)
        )
        assert len(letters) == 1, s.tail("notifier")
        headers = dict(letters[0].headers)
        assert headers["dlq.reason"] == b"email"
        assert b"after 2 attempts" in headers["dlq.error"]
        r = httpx.get(f"{feeds}/v1/people/{ann}/feed", headers=ADMIN, timeout=10)
        assert len(r.json()["items"]) == 1  # the feed item itself is there regardless


def test_line_separators_in_ids_are_neutralised_and_poison_is_dead_lettered(
    stack: ServiceStack,
) -> None:
    """Attack 6 of the second round: an id with a Unicode line separator (U+2028) crashed
    the email agent five times over and that person's email and invite were dropped, with
    nothing on the dead-letter topic. Ids in headers are now shown with the character
    replaced; an address that cannot be sent as it is goes to notifications.dlq, and the
    next person's email goes on."""
    from schemas.people import FeedItem
    from services.common.kafka import new_producer
    from services.notifier import email as email_jobs

    settings = stack.settings
    ann, ben, cat = person("ann"), person("ben"), person("cat")
    sly = "mallory\u2028Bcc: victim@example.org\u202e"

    def item_for(owner: str, other: str) -> FeedItem:
        return FeedItem(
            item_id=secrets.token_hex(16),
            type="suggestion",
            person_id=owner,
            other_person_id=other,
            suggestion_id=secrets.token_hex(16),
            score=0.6,
            suggested_at=NOW,
            delivered_at=NOW,
            explanation="You two have traded 23 thoughtful replies over 7 weeks.",
            evidence={"sources": ["mastodon"]},
        )

    jobs = [
        (ann, email_jobs.job(item_for(ann, sly), address(ann))),  # an id with a separator
        (ben, email_jobs.job(item_for(ben, "x:ann"), "ben\u2028@example.com")),  # poison
        (cat, email_jobs.job(item_for(cat, "x:dan"), address(cat))),  # the next person's
    ]

    async def produce() -> None:
        producer = new_producer(settings, client_id="test")
        await producer.start()
        try:
            for key, value in jobs:
                await producer.send_and_wait(Topics(settings).emails, key=key.encode(), value=value)
        finally:
            await producer.stop()

    asyncio.run(produce())
    [to_ann] = wait_for_mail(address(ann))
    subject = str(to_ann["Subject"])
    assert "\u2028" not in subject and "\u202e" not in subject and "\ufffd" in subject
    assert to_ann.get_all("Bcc") is None
    assert len(wait_for_mail(address(cat))) == 1  # the agent went on after the poison
    letters = asyncio.run(
        read_topic(settings, Topics(settings).suggestions_dlq, expected=1, timeout=30)
    )
    poisoned = [dict(r.headers) for r in letters if r.key == ben.encode()]
    assert len(poisoned) == 1 and poisoned[0]["dlq.reason"] == b"email_compose", letters
    assert stack.procs["notifier"].poll() is None  # never crashed
    assert (
        "agent" not in stack.tail("notifier", 400).lower()
        or "crashed" not in stack.tail("notifier", 400).lower()
    )
