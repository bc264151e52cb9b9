"""A picture of the chat messages for docs/people.md: the Slack message (Block Kit) and the
Discord message (content and components) that ``services.notifier.chat`` builds for one
suggestion, drawn by this test's own small renderer of those two formats in headless Chromium
(not by Slack's or Discord's client, which cannot run here), with axe-core checking the
picture's page too. What is drawn is exactly what the platforms are sent: every text and
button comes from the message JSON."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any

from schemas.people import FeedItem
from services.common import i18n
from services.notifier import chat
from tests.browser import launch, need_chromium
from tests.e2e.test_console_browser import ARTIFACTS

WHEN = datetime(2026, 12, 4, 9, tzinfo=UTC)
ITEM = FeedItem(
    item_id="5f2c9e",
    type="suggestion",
    person_id="web:ann",
    other_person_id="web:ben",
    suggestion_id="5f2c9e",
    score=0.71,
    suggested_at=WHEN,
    delivered_at=WHEN,
    explanation="",
    evidence={
        "meaningful_kinds": {"reply": 23, "message": 9},
        "sources": ["mastodon", "slack"],
        "first_exchange_at": "2026-10-10T10:00:00+00:00",
        "last_exchange_at": "2026-11-28T10:00:00+00:00",
        "meetup": {"kind": "coffee", "city": "Lisbon"},
    },
    meetup={
        "kind": "coffee",
        "city": "Lisbon",
        "window": {"start": "2026-12-09T12:30:00+00:00", "local": {"Europe/Lisbon": ""}},
    },
)
NAMES = {"web:ben": "Ben Ortiz"}


def _slack_text(mrkdwn: str) -> str:
    """Slack's mrkdwn as Slack shows it: *bold*, line breaks (its escapes undone first)."""
    text = mrkdwn.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    out = html.escape(text)
    out = re.sub(r"\*([^*\n]+)\*", r"<strong>\1</strong>", out)
    return out.replace("\n", "<br>")


def slack_html(message: dict[str, Any]) -> str:
    parts = []
    for block in message["blocks"]:
        if block["type"] == "section":
            parts.append(f"<p>{_slack_text(block['text']['text'])}</p>")
        elif block["type"] == "actions":
            buttons = "".join(
                f"<button class='sb {e.get('style', '')}'>{html.escape(e['text']['text'])}</button>"
                for e in block["elements"]
            )
            parts.append(f"<div class='row'>{buttons}</div>")
        elif block["type"] == "context":
            texts = " ".join(_slack_text(e["text"]) for e in block["elements"])
            parts.append(f"<p class='ctx'>{texts}</p>")
    return "".join(parts)


def _discord_text(content: str) -> str:
    lines = []
    for line in content.splitlines():
        small = line.startswith("-# ")
        text = re.sub(r"\\(.)", r"\1", line.removeprefix("-# "))  # its escapes undone
        out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", html.escape(text))
        lines.append(f"<p class='ctx'>{out}</p>" if small else f"<p>{out}</p>")
    return "".join(lines)


_DISCORD_STYLE = {1: "primary", 2: "secondary", 3: "success", 4: "danger"}


def discord_html(message: dict[str, Any]) -> str:
    rows = "".join(
        "<div class='row'>"
        + "".join(
            f"<button class='db {_DISCORD_STYLE[b['style']]}'>{html.escape(b['label'])}</button>"
            for b in row["components"]
        )
        + "</div>"
        for row in message["components"]
    )
    return _discord_text(message["content"]) + rows


CSS = """
body { font-family: sans-serif; margin: 0; padding: 16px; background: #f4f4f4; width: 1180px; }
main { display: flex; gap: 16px; align-items: flex-start; }
section { flex: 1; border-radius: 8px; padding: 12px 16px; }
h1 { font-size: 1.1rem; margin: 0 0 12px; }
h2 { font-size: .8rem; margin: 0 0 8px; text-transform: uppercase; letter-spacing: .05em; }
.slack { background: #fff; color: #1d1c1d; border: 1px solid #ddd; }
.discord { background: #313338; color: #dbdee1; }
.who { font-weight: bold; margin: 0 0 4px; }
.app { font-size: .7rem; background: #e8e8e8; color: #555; padding: 1px 4px; border-radius: 3px; }
.discord .app { background: #5865f2; color: #fff; }
p { margin: 0 0 6px; line-height: 1.4; }
.ctx { font-size: .8rem; color: #616061; }
.discord .ctx { color: #b5bac1; }
.row { display: flex; gap: 8px; flex-wrap: wrap; margin: 8px 0; }
button { font: inherit; font-size: .85rem; padding: 6px 12px; border-radius: 4px; }
.sb { background: #fff; border: 1px solid #bbb; color: #1d1c1d; }
.sb.primary { background: #007a5a; border-color: #007a5a; color: #fff; font-weight: bold; }
.db { border: 0; color: #fff; }
.db.success { background: #248046; } .db.secondary { background: #4e5058; }
.db.primary { background: #5865f2; }
"""


def test_the_chat_messages_as_people_see_them() -> None:
    need_chromium()
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import sync_playwright

    slack = chat.slack(ITEM, names=NAMES, w=i18n.words("en", "Europe/Lisbon"))
    discord = chat.discord(ITEM, names=NAMES, w=i18n.words("de", "Europe/Lisbon"))
    page_html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Chat messages</title>"
        f"<style>{CSS}</style></head><body><h1>realconnect in chat</h1><main>"
        "<section class='slack' aria-label='Slack, English'><h2>Slack</h2>"
        "<p class='who'>realconnect <span class='app'>APP</span></p>"
        f"{slack_html(slack)}</section>"
        "<section class='discord' lang='de' aria-label='Discord, Deutsch'><h2>Discord</h2>"
        "<p class='who'>realconnect <span class='app'>BOT</span></p>"
        f"{discord_html(discord)}</section></main></body></html>"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1212, "height": 400})
            page.set_content(page_html)
            # every button the messages carry is drawn, with the label the platform shows
            assert page.locator(".slack button").all_inner_texts() == [
                "Yes, I'd like to meet",
                "No, thanks",
                "Ask me in 3 days",
            ]
            assert page.locator(".discord button").all_inner_texts() == [
                "Ja, ich würde mich gern treffen",
                "Nein, danke",
                "In 3 Tagen noch mal fragen",
            ]
            assert "Meet Ben Ortiz?" in page.locator(".slack").inner_text()
            assert "Möchtest du Ben Ortiz treffen?" in page.locator(".discord").inner_text()
            violations = [
                v["id"]
                for v in Axe().run(page).response["violations"]
                if v.get("impact") in ("serious", "critical")
            ]
            assert violations == []
            page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)
        finally:
            browser.close()
