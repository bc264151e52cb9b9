"""The chat messages (services/notifier/chat.py) and the interactions' signatures: what each
platform is sent for each item state, in each language, escaped for its markup; which
button values are ours; Discord's Ed25519 check, against keys made here with PyNaCl."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from nacl.signing import SigningKey

from schemas.people import FeedItem
from services.common import i18n
from services.feeds.chat import handle_for
from services.ingest.auth import AuthError, verify_discord
from services.notifier import chat, dm

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)


def item(**kw: Any) -> FeedItem:
    base: dict[str, Any] = {
        "item_id": "ab12",
        "type": "suggestion",
        "person_id": "web:ann",
        "other_person_id": "web:ben",
        "suggestion_id": "ab12",
        "score": 0.7,
        "suggested_at": NOW,
        "delivered_at": NOW,
        "explanation": "You two have traded 12 replies over 7 weeks on Mastodon.",
        "evidence": {},
    }
    return FeedItem(**(base | kw))


def kinds(message: dict[str, Any]) -> list[str]:
    return [b["type"] for b in message["blocks"]]


def values(message: dict[str, Any]) -> list[str]:
    return [e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def test_a_new_suggestion_offers_yes_no_later_and_an_answered_one_says_the_answer_back() -> None:
    new = chat.slack(item(), names={"web:ben": "Ben"})
    assert kinds(new) == ["section", "actions", "context"]
    assert new["blocks"][0]["text"]["text"].startswith("*Meet Ben?*\nYou two have traded 12")
    assert values(new) == ["ab12|accept", "ab12|decline", "ab12|snooze"]
    assert new["text"].startswith("Meet Ben? You two")  # what a notification says
    said = chat.slack(item(response="accepted"), names={"web:ben": "Ben"})
    assert values(said) == []
    assert said["blocks"][-1]["elements"][0]["text"] == (
        "You said yes. We'll tell you when the meetup is on."
    )
    # once both said yes, "We met" (issue 41: one step at a time), and nothing after it
    on = chat.slack(item(response="accepted"), meetup_on=True)
    assert values(on) == ["ab12|met"]
    assert "the meetup is on" in on["blocks"][-1]["elements"][0]["text"]
    assert values(chat.slack(item(type="mutual"), meetup_on=True)) == ["ab12|met"]
    assert values(chat.slack(item(type="mutual", response="met"), meetup_on=True)) == []
    # a snoozed item can be answered again when it comes back
    assert values(chat.slack(item(response="snoozed"))) == [
        "ab12|accept",
        "ab12|decline",
        "ab12|snooze",
    ]


def test_discord_messages_carry_buttons_within_its_limits_and_ping_nobody() -> None:
    msg = chat.discord(item(), names={"web:ben": "@everyone"})
    assert msg["allowed_mentions"] == {"parse": []}
    assert msg["content"].startswith("**Meet \\@everyone?**")
    [row] = msg["components"]
    assert row["type"] == 1
    assert [(b["type"], b["style"], b["custom_id"]) for b in row["components"]] == [
        (2, 3, "rc|ab12|accept"),
        (2, 2, "rc|ab12|decline"),
        (2, 2, "rc|ab12|snooze"),
    ]
    long = chat.discord(item(explanation="x" * 5000))
    assert len(long["content"]) <= 2000
    assert chat.discord(item(response="declined"))["components"] == []


def test_names_cannot_make_links_mentions_or_markup() -> None:
    msg = chat.slack(item(), names={"web:ben": "<!channel> & <https://evil.example|ben>"})
    text = msg["blocks"][0]["text"]["text"]
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|ben&gt;" in text
    d = chat.discord(item(), names={"web:ben": "**[x](https://evil.example)** <@123>"})
    assert "\\*\\*\\[x\\]\\(https\\://evil.example\\)\\*\\* \\<\\@123\\>" in d["content"]


@pytest.mark.parametrize(
    ("language", "headline", "accept"),
    [
        ("en", "Meet Ben?", "Yes, I'd like to meet"),
        ("de", "Möchtest du Ben treffen?", "Ja, ich würde mich gern treffen"),
        ("fr", "Rencontrer Ben\u00a0?", "Oui, j'aimerais une rencontre"),
    ],
)
def test_every_word_of_a_message_is_in_the_person_s_language(
    language: str, headline: str, accept: str
) -> None:
    w = i18n.words(language)
    msg = chat.slack(item(), names={"web:ben": "Ben"}, w=w)
    assert msg["blocks"][0]["text"]["text"].startswith(f"*{headline}*")
    assert msg["blocks"][1]["elements"][0]["text"]["text"] == accept
    d = chat.discord(item(response="declined"), names={"web:ben": "Ben"}, w=w)
    assert d["content"].splitlines()[-1].startswith("-# ")
    if language != "en":
        assert "You said" not in d["content"]


def test_only_our_own_button_values_are_read() -> None:
    assert chat.parse("ab12|accept", "slack") == chat.Pressed("ab12", "accept")
    assert chat.parse("rc|ab12|met", "discord") == chat.Pressed("ab12", "met")
    for bad in ("ab12|delete", "ab12", "|accept", "ab12|accept|x", "x" * 81 + "|accept"):
        assert chat.parse(bad, "slack") is None
    assert chat.parse("ab12|accept", "discord") is None  # not our prefix
    assert chat.parse("other|ab12|accept", "discord") is None


def test_account_ids_people_type_become_handles_or_are_refused() -> None:
    assert handle_for("slack", " T0123ABC:U0456DEF ") == "slack:T0123ABC:U0456DEF"
    assert handle_for("discord", "200000000000000001") == "discord:200000000000000001"
    for platform, bad in [("slack", "U0456DEF"), ("slack", "t1:u2"), ("discord", "ann#1234")]:
        with pytest.raises(ValueError, match=bad):
            handle_for(platform, bad)  # type: ignore[arg-type]
    assert dm.user_of("slack:T1:U2", "slack") == "U2"
    with pytest.raises(ValueError, match="not a slack handle"):
        dm.user_of("discord:1", "slack")


def test_discord_signatures_are_checked_over_timestamp_and_body() -> None:
    key = SigningKey.generate()
    public = key.verify_key.encode().hex()
    body = b'{"type":1}'
    ts = str(int(time.time()))
    good = {
        "x-signature-timestamp": ts,
        "x-signature-ed25519": key.sign(ts.encode() + body).signature.hex(),
    }
    verify_discord(good, body, public, now=time.time(), tolerance=300)
    other = SigningKey.generate().sign(ts.encode() + body).signature.hex()
    cases = [
        ({**good, "x-signature-ed25519": other}, body),  # another key
        (good, b'{"type":3}'),  # another body
        ({**good, "x-signature-ed25519": "zz"}, body),  # not a signature
        ({"x-signature-ed25519": good["x-signature-ed25519"]}, body),  # no timestamp
    ]
    for headers, content in cases:
        with pytest.raises(AuthError):
            verify_discord(headers, content, public, now=time.time(), tolerance=300)
    with pytest.raises(AuthError, match="tolerance"):  # a replay, ten minutes later
        verify_discord(good, body, public, now=time.time() + 600, tolerance=300)
