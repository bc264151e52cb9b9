"""A person's web page in a real headless Chromium (Debian's, driven by Playwright), against
the whole stack: interactions go in through ingest, the matcher suggests, the notifier
delivers, and two people sign in by their links, answer, see their meetup live, download the
invite, change their preferences, and cannot reach anybody else's item."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from icalendar import Calendar

from tests.browser import launch, need_chromium
from tests.e2e.test_console_browser import ALL, ARTIFACTS, WEEKS, conversation, post
from tests.people import ADMIN, admin_feed, opt_in, token_for
from tests.stack import ServiceStack, fresh_stack

ANN, BEN, CAT, DAN = "web:ann", "web:ben", "web:cat", "web:dan"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceStack]:
    with fresh_stack(tmp_path_factory.mktemp("page"), ALL) as s:
        yield s


def signed_in_on_a_phone(browser: Any, feeds: str, person: str) -> Any:
    """A phone-sized page of ``person``'s, signed in through their sign-in link."""
    page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    page.goto(link_for(feeds, person))
    page.get_by_role("button", name=f"Continue as {person}").click()
    return page


def link_for(feeds: str, person: str) -> str:
    r = httpx.post(f"{feeds}/v1/people/{person}/signin-links", headers=ADMIN, timeout=10)
    assert r.status_code == 201, r.text
    url: str = r.json()["url"]
    return url


def wait_items(feeds: str, person: str, n: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        items = admin_feed(feeds, person)
        if len(items) >= n or time.monotonic() > deadline:
            return items
        time.sleep(0.3)


def test_people_sign_in_answer_and_meet_on_their_page(stack: ServiceStack) -> None:
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    feeds = stack.url("feeds")
    opt_in(feeds, ANN, time_zone="Europe/Lisbon")
    opt_in(feeds, BEN, time_zone="America/New_York")
    opt_in(feeds, CAT)
    opt_in(feeds, DAN)
    start = datetime(2026, 5, 1, 9, tzinfo=UTC)
    # weeks of replies: suggested under the default gate (test_console_browser.WEEKS)
    post(
        stack,
        conversation(ANN, BEN, start=start, **WEEKS)  # type: ignore[arg-type]
        + conversation(CAT, DAN, start=start, **WEEKS),  # type: ignore[arg-type]
    )
    [ann_item] = wait_items(feeds, ANN, 1)
    [cat_item] = wait_items(feeds, CAT, 1)
    assert ann_item["other_person_id"] == BEN
    item_id, other_id = ann_item["item_id"], cat_item["item_id"]
    assert item_id != other_id

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            phone = {"viewport": {"width": 390, "height": 844}, "accept_downloads": True}
            ann = browser.new_context(**phone)
            ben = browser.new_context(**phone)
            pa, pb = ann.new_page(), ben.new_page()
            external: list[str] = []
            for p in (pa, pb):  # no asset from anywhere but the service itself
                p.on(
                    "request",
                    lambda r: None if r.url.startswith(feeds) else external.append(r.url),
                )

            # signed out: the page says how to sign in
            pa.goto(f"{feeds}/app")
            expect(pa.get_by_role("heading", name="Please sign in")).to_be_visible()

            # sign in through the one-time link: a button, then the feed
            ann_link = link_for(feeds, ANN)
            pa.goto(ann_link)
            pa.get_by_role("button", name=f"Continue as {ANN}").click()
            expect(pa.get_by_role("heading", name=f"Your suggestions, {ANN}")).to_be_visible()
            cookie = next(c for c in ann.cookies() if c["name"] == "rc_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
            # the link worked once
            pa2 = ann.new_page()
            pa2.goto(ann_link)
            expect(pa2.get_by_role("heading", name="This link no longer works")).to_be_visible()
            pa2.close()

            card = pa.locator(f"#item-{item_id}")
            expect(card.get_by_role("heading", name=f"Meet {BEN}?")).to_be_visible()
            expect(card.locator(".explanation")).to_contain_text("You two have")
            card.get_by_text("Why we suggest this").click()
            expect(card.locator(".evidence")).to_contain_text("thoughtful exchanges")
            expect(card.locator(".proposal")).to_contain_text("video call")
            # cat's item is not on ann's page
            expect(pa.locator(f"#item-{other_id}")).to_have_count(0)

            # ann accepts; the page shows her answer
            card.get_by_role("button", name="Yes, I'd like to meet").click()
            expect(pa.locator(f"#item-{item_id} .answer")).to_contain_text("Your answer: yes")
            # one yes is not a meetup: "We met" waits until ben says yes too (issue 41)
            expect(
                pa.locator(f"#item-{item_id}").get_by_role("button", name="We met")
            ).to_have_count(0)

            # ben signs in and accepts: both get the mutual item, ann's page live (no reload)
            pb.goto(link_for(feeds, BEN))
            pb.get_by_role("button", name=f"Continue as {BEN}").click()
            pb.locator(f"#item-{item_id}").get_by_role(
                "button", name="Yes, I'd like to meet"
            ).click()
            expect(pb.get_by_role("heading", name=f"You and {ANN} both said yes")).to_be_visible()
            mutual = pa.locator(".item.mutual")
            expect(mutual).to_have_count(1, timeout=20_000)  # arrived over SSE
            expect(pa.locator("#live")).to_contain_text("both said yes")
            slot = mutual.locator(".slot")
            expect(slot).to_contain_text("Europe/Lisbon")
            expect(slot).to_contain_text("America/New_York")
            expect(slot).to_contain_text("UTC")

            # the calendar file
            with pa.expect_download() as dl:
                mutual.get_by_role("link", name="Add to calendar (.ics)").click()
            cal = Calendar.from_ical(Path(dl.value.path()).read_bytes())
            [event] = cal.walk("VEVENT")
            assert str(cal["method"]) == "PUBLISH"
            assert BEN in str(event["summary"])
            assert event.decoded("dtstart").utcoffset().total_seconds() == 0
            assert "Europe/Lisbon" in str(event["description"])
            pa.screenshot(path=str(ARTIFACTS / "feed.png"), full_page=True)

            # they met, with a rating
            mutual.get_by_label("How was it? (optional)").select_option("5")
            mutual.get_by_role("button", name="We met").click()
            expect(pa.locator(".item.mutual .answer")).to_contain_text("we met (5 of 5)")

            # preferences, through the form
            pa.get_by_role("link", name="Preferences").click()
            pa.get_by_label("Time zone").select_option("Asia/Tokyo")
            pa.get_by_label("From").fill("22:00")
            pa.get_by_label("to", exact=True).fill("07:00")
            pa.get_by_label("At most this many suggestions a week").fill("2")
            pa.get_by_label("Email, with a calendar invite when we both say yes").check()
            pa.get_by_label("Email address").fill("ann@example.com")
            pa.get_by_role("button", name="Save preferences").click()
            expect(pa.get_by_role("status")).to_contain_text("Saved.")
            # every visible control has a label (screen readers)
            unlabelled = pa.evaluate(
                """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                   .filter(e => !e.labels || e.labels.length === 0).map(e => e.id || e.name)"""
            )
            assert unlabelled == []
            # a bad value is refused with a clear message, and nothing is saved
            pa.get_by_label("Email address").fill("not-an-address")
            pa.evaluate("document.getElementById('email').type = 'text'")  # past the browser
            pa.get_by_role("button", name="Save preferences").click()
            expect(pa.get_by_role("alert")).to_contain_text("email")
            prefs = httpx.get(
                f"{feeds}/v1/me/preferences", headers=token_for(feeds, ANN), timeout=10
            ).json()
            assert prefs["time_zone"] == "Asia/Tokyo"
            assert prefs["quiet_hours"] == {"start": "22:00", "end": "07:00"}
            assert prefs["max_per_week"] == 2 and prefs["opted_in"] is True
            assert prefs["channels"] == ["page", "email", "webhook"]  # webhook: on by default
            assert prefs["email"] == "ann@example.com"

            # another person's item is not reachable, whatever ann sends
            csrf = pa.locator("input[name=csrf]").first.get_attribute("value")
            r = pa.request.get(f"{feeds}/app/items/{other_id}/invite.ics")
            assert r.status == 404
            r = pa.request.post(f"{feeds}/app/items/{other_id}/accept", form={"csrf": csrf or ""})
            assert r.status == 404
            assert admin_feed(feeds, CAT)[0]["response"] is None
            # and a form without the page's CSRF token does nothing
            r = pa.request.post(f"{feeds}/app/items/{item_id}/decline", form={"csrf": "forged"})
            assert r.status == 403

            # keyboard: the first Tab reaches the skip link
            pa.goto(f"{feeds}/app")
            pa.keyboard.press("Tab")
            assert pa.evaluate("document.activeElement.textContent") == "Skip to content"

            # sign out ends the session
            pa.get_by_role("button", name="Sign out").click()
            expect(pa.get_by_role("heading", name="You are signed out")).to_be_visible()
            pa.goto(f"{feeds}/app")
            expect(pa.get_by_role("heading", name="Please sign in")).to_be_visible()
            assert external == []
        finally:
            browser.close()


GIA, HAL, IVY = "web:gia", "web:hal", "web:ivy"


def test_a_group_meetup_on_the_page_answered_by_each_and_on_at_three(stack: ServiceStack) -> None:
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    feeds = stack.url("feeds")
    auth = {p: opt_in(feeds, p, time_zone="Europe/Berlin") for p in (GIA, HAL, IVY)}
    start = datetime(2026, 6, 1, 9, tzinfo=UTC)
    # three who all talk with each other, every pair back and forth
    post(
        stack,
        conversation(GIA, HAL, 8, start)
        + conversation(HAL, IVY, 8, start)
        + conversation(GIA, IVY, 8, start),
    )
    deadline = time.monotonic() + 90
    while not any(i["type"] == "group" for i in admin_feed(feeds, GIA)):
        assert time.monotonic() < deadline, admin_feed(feeds, GIA)
        time.sleep(0.3)
    [group] = [i for i in admin_feed(feeds, GIA) if i["type"] == "group"]
    gid = group["item_id"]

    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = signed_in_on_a_phone(browser, feeds, GIA)
            card = page.locator(f"#item-{gid}")
            expect(
                card.get_by_role("heading", name=f"Meet {HAL} and {IVY} together?")
            ).to_be_visible()
            expect(card.locator(".explanation")).to_contain_text("A table for three?")
            card.get_by_text("Why we suggest this").click()
            expect(card.locator(".evidence")).to_contain_text("closest contact")
            expect(card.locator(".proposal")).to_contain_text("A meetup for the three of you")
            card.get_by_role("button", name="Yes, I'd like to meet").click()
            expect(page.locator(f"#item-{gid} .answer")).to_contain_text("Your answer: yes")
            for p in (HAL, IVY):  # the two others say yes through the API
                r = httpx.post(f"{feeds}/v1/me/feed/{gid}/accept", headers=auth[p], timeout=10)
                assert r.status_code == 200, r.text
            on = page.locator(".item.group_on")
            expect(on).to_have_count(1, timeout=20_000)  # arrived over SSE, no reload
            page.reload()
            expect(on.get_by_role("heading")).to_contain_text("It's on")
            expect(on.locator(".slot")).to_contain_text("Europe/Berlin")
            with page.expect_download() as dl:
                on.get_by_role("link", name="Add to calendar (.ics)").click()
            cal = Calendar.from_ical(Path(dl.value.path()).read_bytes())
            [event] = cal.walk("VEVENT")
            assert HAL in str(event["summary"]) and IVY in str(event["summary"])
            page.screenshot(path=str(ARTIFACTS / "group.png"), full_page=True)
        finally:
            browser.close()


JO, KIT = "web:jo", "web:kit"


def test_a_person_asks_why_not_on_their_page(stack: ServiceStack) -> None:
    """Issue 39: jo and kit have traded two replies, one each way. jo asks on her page why
    they were not suggested: the page names what is missing from their own exchanges and
    what would change it. Asking about someone she never wrote to says there is nothing to
    explain. (Which answers may be given, and that the other person's causes read the same:
    tests/unit/test_why_not.py and tests/integration/test_notifier_feeds.py.)"""
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    feeds = stack.url("feeds")
    auth = opt_in(feeds, JO)
    opt_in(feeds, KIT)
    post(stack, conversation(JO, KIT, 2, datetime(2026, 7, 1, 9, tzinfo=UTC)))
    deadline = time.monotonic() + 60
    while True:  # the matcher has their pair once the API can explain it
        r = httpx.get(f"{feeds}/v1/me/why-not", params={"with": KIT}, headers=auth, timeout=30)
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert r.status_code == 200, r.text
    assert r.json()["answer"] == "not_yet"

    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = signed_in_on_a_phone(browser, feeds, JO)
            page.get_by_role("link", name="Why haven't we suggested meeting someone?").click()
            page.get_by_label("Their handle or id").fill(KIT)
            page.get_by_role("button", name="Ask").click()
            answer = page.locator(".answer")
            expect(answer).to_contain_text(
                "1 meaningful exchange from you and 1 from them so far; we wait for 3 each way."
            )
            expect(answer).to_contain_text("What would change it")
            assert answer.get_attribute("data-answer") == "not_yet"
            page.screenshot(path=str(ARTIFACTS / "why-not.png"), full_page=True)
            page.get_by_label("Their handle or id").fill("web:nobody")
            page.get_by_role("button", name="Ask").click()
            expect(page.locator(".answer")).to_contain_text("We know of no exchange")
        finally:
            browser.close()
