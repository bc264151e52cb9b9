"""The person's page and the operator console, accessible and in the person's language
(issue 41), in a real headless Chromium against the whole stack.

- axe-core (``axe-playwright-python``) finds no serious or critical violation on any page
  state: sign-in, the list (with its evidence open), after an answer, preferences (and with
  errors, and linking a Slack account with the code the bot sent), the why-not answer, an
  error page; the console's funnel and its pair inspector.
- A keyboard-only person signs in and answers, Tab and Enter alone.
- The page honours ``prefers-reduced-motion`` and reflows at 200% zoom (1280 px shown at
  640 CSS px: no horizontal scrolling, the answer buttons on screen).
- The page speaks German to a German browser and French to a person who chose French.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.browser import launch, need_chromium
from tests.chat_platforms import SlackServer
from tests.e2e.test_console_browser import ALL, ARTIFACTS, WEEKS, conversation, post
from tests.e2e.test_person_page import link_for, wait_items
from tests.people import opt_in
from tests.stack import ServiceStack, fresh_stack

ANN, BEN = "a11y:ann", "a11y:ben"  # English
EVA, FIL = "a11y:eva", "a11y:fil"  # EVA's browser asks for German; FIL chose French
#: the violations that fail a page (axe-core's impact levels): the issue asks for no serious or
#: critical one; moderate ones (a missing main landmark, content outside regions) fail too
BLOCKING = ("serious", "critical", "moderate")


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackServer]:
    server = SlackServer()
    server.users.add("U0A11Y001")
    yield server
    server.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, slack: SlackServer) -> Iterator[ServiceStack]:
    chat = {  # Slack delivery on (a local Slack), so the page offers linking an account
        "REALCONNECT_CHAT__SLACK_TOKEN": slack.TOKEN,
        "REALCONNECT_CHAT__SLACK_SIGNING_SECRETS": json.dumps([slack.SECRET]),
        "REALCONNECT_CHAT__SLACK_API_URL": slack.api,
    }
    with fresh_stack(tmp_path_factory.mktemp("a11y"), ALL, **chat) as s:
        feeds = s.url("feeds")
        opt_in(feeds, ANN, time_zone="Europe/Lisbon")
        opt_in(feeds, BEN, time_zone="Europe/Lisbon")
        opt_in(feeds, EVA, time_zone="Europe/Berlin")
        opt_in(feeds, FIL, time_zone="Europe/Paris", language="fr")
        start = datetime(2026, 5, 1, 9, tzinfo=UTC)
        post(
            s,
            conversation(ANN, BEN, start=start, **WEEKS)  # type: ignore[arg-type]
            + conversation(EVA, FIL, start=start, **WEEKS),  # type: ignore[arg-type]
        )
        for person in (ANN, EVA, FIL):
            assert len(wait_items(feeds, person, 1)) == 1
        yield s


def blocking(page: Any, state: str) -> list[str]:
    """axe-core's serious and critical violations on ``page`` (``state`` names it)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{state}: {v['id']} ({v['impact']}): {v['help']}: "
        + "; ".join(f"{n['target']} {n.get('failureSummary', '')[:200]}" for n in v["nodes"])
        for v in results.response["violations"]
        if v.get("impact") in BLOCKING
    ]


def sign_in(context: Any, feeds: str, person: str, button: str) -> Any:
    page = context.new_page()
    page.goto(link_for(feeds, person))
    page.get_by_role("button", name=button).click()
    return page


def test_axe_finds_nothing_serious_on_any_page_state(
    stack: ServiceStack, slack: SlackServer
) -> None:
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    feeds, found = stack.url("feeds"), []
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            # axe is injected by script: the page's CSP (script-src 'self') is bypassed for it
            context = browser.new_context(bypass_csp=True, locale="en-GB")
            page = context.new_page()
            page.goto(feeds + "/app")  # signed out: the error page
            expect(page.get_by_role("heading", name="Please sign in")).to_be_visible()
            found += blocking(page, "signed out")
            page.goto(link_for(feeds, ANN))
            found += blocking(page, "sign-in")
            page.get_by_role("button", name=f"Continue as {ANN}").click()
            card = page.locator(".item").first
            expect(card.get_by_role("heading", name=f"Meet {BEN}?")).to_be_visible()
            card.get_by_text("Why we suggest this").click()
            found += blocking(page, "list")
            card.get_by_role("button", name="Yes, I'd like to meet").click()
            expect(page.locator(".item .answer").first).to_contain_text("Your answer: yes")
            found += blocking(page, "answered")
            page.get_by_role("link", name="Preferences").click()
            found += blocking(page, "preferences")
            # linking a Slack account: the code the bot sent, typed in
            page.get_by_label("Your account id").fill(f"{slack.team}:U0A11Y001")
            page.get_by_role("button", name="Send me a code").click()
            expect(page.get_by_role("status")).to_contain_text("We sent a code")
            found += blocking(page, "link code")
            code = re.search(r"\b(\d{6})\b", slack.dms("U0A11Y001")[-1]["text"])
            assert code is not None
            page.get_by_label(f"The code we sent to slack:{slack.team}:U0A11Y001").fill(code[1])
            page.get_by_role("button", name="Link this account").click()
            expect(page.get_by_role("status")).to_contain_text("Linked.")
            unlink = page.get_by_role("button", name=f"Unlink slack:{slack.team}:U0A11Y001")
            expect(unlink).to_be_visible()
            found += blocking(page, "linked")
            page.get_by_label("Email address").fill("not-an-address")
            page.evaluate("document.getElementById('email').type = 'text'")  # past the browser
            page.get_by_role("button", name="Save preferences").click()
            expect(page.get_by_role("alert")).to_contain_text("Email address")
            found += blocking(page, "preferences with errors")
            page.goto(feeds + "/app/why-not?with=" + BEN)
            expect(page.locator(".answer")).to_be_visible()
            found += blocking(page, "why not")

            console = stack.url("console")
            page.goto(console + "/")
            found += blocking(page, "console sign-in")
            page.get_by_test_id("token").fill("dev-admin-token")
            page.get_by_test_id("login").click()
            expect(page.get_by_test_id("suggestions_emitted")).not_to_have_attribute(
                "data-raw", "0", timeout=30_000
            )
            found += blocking(page, "console")
            page.goto(console + "/inspect")  # signed in already (the console's session)
            page.get_by_test_id("person").fill(ANN)
            page.get_by_test_id("inspect").click()
            circle = page.get_by_test_id("circle")
            expect(circle.locator("tbody tr")).to_have_count(1, timeout=30_000)
            circle.locator("tbody tr button").first.click()
            expect(page.get_by_test_id("gates")).to_be_visible(timeout=20_000)
            found += blocking(page, "pair inspector")
        finally:
            browser.close()
    assert found == []


def test_a_keyboard_alone_signs_in_and_answers(stack: ServiceStack) -> None:
    """Tab and Enter only: from the sign-in link to a "no, thanks", focus always visible."""
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    feeds = stack.url("feeds")

    def tab_to(page: Any, name: str, limit: int = 40) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            label = page.evaluate(
                "() => (document.activeElement.innerText || document.activeElement.value || '')"
                ".trim()"
            )
            if label == name:
                outline = page.evaluate(
                    "() => getComputedStyle(document.activeElement).outlineStyle"
                )
                assert outline != "none", f"no visible focus on {name!r}"
                return
        raise AssertionError(f"{name!r} is not reachable by Tab")

    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_context(locale="en-GB").new_page()
            page.goto(link_for(feeds, BEN))
            tab_to(page, f"Continue as {ANN.replace('ann', 'ben')}")
            page.keyboard.press("Enter")
            expect(page.get_by_role("heading", name=f"Meet {ANN}?")).to_be_visible()
            tab_to(page, "No, thanks")
            page.keyboard.press("Enter")
            expect(page.locator(".item .answer").first).to_contain_text("no, thanks")
        finally:
            browser.close()


def test_reduced_motion_and_200_percent_zoom(stack: ServiceStack) -> None:
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    feeds = stack.url("feeds")
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            # 1280 x 800 at 200%: 640 x 400 CSS pixels, each two device pixels
            context = browser.new_context(
                viewport={"width": 640, "height": 400},
                device_scale_factor=2,
                reduced_motion="reduce",
                locale="en-GB",
            )
            page = sign_in(context, feeds, ANN, f"Continue as {ANN}")
            expect(page.get_by_role("heading", name=f"Your suggestions, {ANN}")).to_be_visible()
            for path in ("/app", "/app/preferences", f"/app/why-not?with={BEN}"):
                page.goto(feeds + path)
                wide = page.evaluate(
                    "() => document.documentElement.scrollWidth - window.innerWidth"
                )
                assert wide <= 0, f"{path} scrolls sideways by {wide} px at 200%"
            page.goto(feeds + "/app")
            # nothing moves: every transition and animation is off under reduced motion
            moving = page.evaluate(
                """() => [...document.querySelectorAll('*')].filter(e => {
                    const s = getComputedStyle(e);
                    const t = parseFloat(s.transitionDuration) + parseFloat(s.animationDuration);
                    return t > 0.01 || s.scrollBehavior === 'smooth';
                }).map(e => e.tagName)"""
            )
            assert moving == []
            # and with motion allowed, the page does animate something (the check can fail)
            context.close()
            context = browser.new_context(locale="en-GB", reduced_motion="no-preference")
            page = sign_in(context, feeds, ANN, f"Continue as {ANN}")
            # the feed, loaded (CI once read an empty document, mid-navigation)
            expect(page.get_by_role("heading", name=f"Your suggestions, {ANN}")).to_be_visible()
            durations = page.evaluate(
                """() => [...document.querySelectorAll('button, a')].map(
                    e => parseFloat(getComputedStyle(e).transitionDuration))"""
            )
            assert max(durations) > 0
        finally:
            browser.close()


def test_the_page_speaks_the_person_s_language(stack: ServiceStack) -> None:
    """EVA's browser asks for German (``Accept-Language: de-DE``); FIL chose French in their
    preferences, whatever the browser asks. The expected words are the catalogues' (worked
    by hand in tests/unit/test_sentences.py and the .po files)."""
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    feeds = stack.url("feeds")
    r = httpx.get(
        f"{feeds}/app/signed-out", headers={"Accept-Language": "fr-CH, fr;q=0.9"}, timeout=10
    )
    assert r.headers["content-language"] == "fr" and 'lang="fr"' in r.text
    assert "Vous êtes déconnecté" in r.text
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            de = browser.new_context(locale="de-DE", viewport={"width": 900, "height": 900})
            page = sign_in(de, feeds, EVA, f"Weiter als {EVA}")
            expect(page.locator("html")).to_have_attribute("lang", "de")
            expect(page.get_by_role("heading", name=f"Deine Vorschläge, {EVA}")).to_be_visible()
            card = page.locator(".item").first
            expect(card.get_by_role("heading", name=f"{FIL} treffen?")).to_be_visible()
            expect(card.locator(".explanation")).to_contain_text("Ihr zwei habt in")
            expect(card.locator(".explanation")).to_contain_text("ausgetauscht.")
            card.get_by_text("Warum wir das vorschlagen").click()
            expect(card.locator(".evidence")).to_contain_text("durchdachte Wortwechsel")
            expect(
                card.get_by_role("button", name="Ja, ich würde mich gern treffen")
            ).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "feed-de.png"), full_page=True)

            fr = browser.new_context(locale="de-DE")  # the browser asks for German...
            page = sign_in(fr, feeds, FIL, f"Continuer en tant que {FIL}")  # ...FIL chose fr
            expect(page.locator("html")).to_have_attribute("lang", "fr")
            card = page.locator(".item").first
            expect(card.get_by_role("heading", name=f"Rencontrer {EVA}\u00a0?")).to_be_visible()
            expect(card.locator(".explanation")).to_contain_text("Vous deux avez échangé")
            card.get_by_role("button", name="Oui, j'aimerais une rencontre").click()
            expect(page.locator(".item .answer").first).to_contain_text("Votre réponse\u00a0: oui")
        finally:
            browser.close()
