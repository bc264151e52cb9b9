"""The emails and invites (pure): headers, the parsed invite, unsubscribe signatures, and the
plain-words evidence of the web page, checked against hand-worked expectations."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from pydantic import ValidationError

from schemas.people import FeedItem, Preferences
from services.feeds.page import plain_evidence, proposal
from services.notifier import mail
from services.notifier.feeds import meeting_window

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def item(item_type: str = "suggestion", **meetup: object) -> FeedItem:
    return FeedItem(
        item_id="ab12cd",
        type=item_type,  # type: ignore[arg-type]
        person_id="ann",
        other_person_id="ben",
        suggestion_id="ab12cd",
        score=0.6,
        suggested_at=NOW,
        delivered_at=NOW,
        explanation="You two have traded 23 thoughtful replies over 7 weeks.",
        evidence={
            "exchanges": {"ann->ben": 12, "ben->ann": 11},
            "distinct_days": 9,
            "distinct_weeks": 6,
            "call_minutes": 42.4,
            "longest_call_minutes": 30,
            "sources": ["mastodon", "slack"],
            "tie_strength": {"probability": 0.62},
        },
        meetup=dict(meetup) or None,
    )


def mutual() -> FeedItem:
    zones = ["Europe/Lisbon", "America/New_York"]
    return item("mutual", kind="video_call", window=meeting_window(zones, NOW))


def test_the_message_id_is_the_items_so_a_redelivery_is_the_same_message() -> None:
    a = mail.compose(
        item(), to="ann@example.com", sender="rc <no@rc.test>", page_link="L1", unsubscribe="U"
    )
    b = mail.compose(
        item(), to="ann@example.com", sender="rc <no@rc.test>", page_link="L2", unsubscribe="U"
    )
    assert a.message_id == b.message_id == mail.message_id("ann", "ab12cd")
    assert mail.message_id("ben", "ab12cd") != a.message_id  # each person's copy is its own


def test_headers_and_body_of_a_suggestion_email() -> None:
    m = mail.compose(
        item(),
        to="ann@example.com",
        sender="realconnect <no@rc.test>",
        page_link="https://rc.test/app/signin?t=x",
        unsubscribe="https://rc.test/v1/unsubscribe?p=ann&s=0f",
    )
    parsed = message_from_bytes(m.message.as_bytes(), policy=policy.default)
    assert parsed["List-Unsubscribe"] == "<https://rc.test/v1/unsubscribe?p=ann&s=0f>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Date"] == "Mon, 30 Nov 2026 12:00:00 +0000"
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "https://rc.test/app/signin?t=x" in text and "23 thoughtful replies" in text
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<a href='https://rc.test/app/signin?t=x'>" in html
    assert not [p for p in parsed.walk() if p.get_content_type() == "text/calendar"]


def test_the_invite_of_a_mutual_item() -> None:
    m = mail.compose(
        mutual(),
        to="ann@example.com",
        sender="realconnect <no@rc.test>",
        page_link="L",
        unsubscribe="U",
        attendees={"ann": "ann@example.com", "ben": "ben@example.com"},
    )
    parsed = message_from_bytes(m.message.as_bytes(), policy=policy.default)
    [part] = [p for p in parsed.walk() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == "REQUEST"
    cal = Calendar.from_ical(part.get_payload(decode=True))
    [ev] = cal.walk("VEVENT")
    # hand-worked: from 1 Dec 00:00 UTC, the first hour that is 09-20 h in New York (UTC-5)
    # and in Lisbon (UTC+0) is 14:00 UTC = 09:00 New York = 14:00 Lisbon
    assert ev.decoded("dtstart") == datetime(2026, 12, 1, 14, tzinfo=UTC)
    assert ev.decoded("dtend") == datetime(2026, 12, 1, 15, tzinfo=UTC)
    assert str(ev["uid"]) == "ab12cd@realconnect"
    assert sorted(str(a) for a in ev["attendee"]) == [
        "mailto:ann@example.com",
        "mailto:ben@example.com",
    ]
    assert str(ev["organizer"]) == "mailto:no@rc.test"
    desc = str(ev["description"])
    assert "9:00\u202fAM in America/New_York" in desc and "2:00\u202fPM in Europe/Lisbon" in desc
    assert ev.decoded("dtstart").astimezone(ZoneInfo("America/New_York")).hour == 9


def test_no_invite_without_a_slot() -> None:
    antipodes = item("mutual", kind="video_call", window={"start": None, "end": None})
    assert mail.invite(antipodes, organizer="no@rc.test", attendees={}) is None
    assert mail.invite(item(), organizer="no@rc.test", attendees={}) is None


def test_unsubscribe_links_are_per_person_and_keyed() -> None:
    s = mail.unsubscribe_sig("k" * 32, "ann")
    assert s != mail.unsubscribe_sig("k" * 32, "ben")
    assert s != mail.unsubscribe_sig("j" * 32, "ann")
    url = mail.unsubscribe_url("https://rc.test/", "k" * 32, "cns:1")
    assert (
        url
        == f"https://rc.test/v1/unsubscribe?p=cns%3A1&s={mail.unsubscribe_sig('k' * 32, 'cns:1')}"
    )


def test_the_evidence_in_plain_words() -> None:
    assert plain_evidence(item()) == [
        "23 thoughtful exchanges: 12 from you, 11 from ben.",
        "In touch on 9 different days, in 6 different weeks.",
        "42 minutes on the phone; the longest call was 30 minutes.",
        "Where: Mastodon and Slack.",
        "How close this tie looks: 62% (from patterns of contact, never from what you wrote).",
    ]
    assert proposal(item(kind="coffee", city="Lisbon"))["what"] == "Coffee in Lisbon"
    p = proposal(mutual())
    assert p["what"] == "A video call" and p["slot"][0] == "Tue, Dec 1, 2:00\u202fPM UTC"


def test_channels_need_their_address() -> None:
    p = Preferences(channels=["page", "email"])
    assert p.wants("page") and not p.wants("email")  # no address yet
    assert Preferences(channels=["page", "email"], email="ann@example.com").wants("email")
    assert not Preferences(email="ann@example.com").wants("email")  # not chosen
    assert not Preferences().wants("webhook")
    with pytest.raises(ValidationError):
        Preferences(email="not-an-address")
    with pytest.raises(ValidationError):
        Preferences(channels=["sms"])  # type: ignore[list-item]


def test_ids_in_headers_are_shown_with_breaking_characters_replaced() -> None:
    sly = FeedItem.model_validate(
        {**item().model_dump(), "other_person_id": "mal\u2028Bcc: x@y\u202e\u200b"}
    )
    m = mail.compose(
        sly, to="ann@example.com", sender="rc <no@rc.test>", page_link="L", unsubscribe="U"
    )
    parsed = message_from_bytes(m.message.as_bytes(), policy=policy.default)
    assert (
        parsed["Subject"]
        == "Meet mal\ufffdBcc: x@y\ufffd\ufffd? realconnect has a suggestion for you"
    )
    assert parsed.get_all("Bcc") is None
    assert mail.header_text("ann\u0085\u2029ok") == "ann\ufffd\ufffdok"  # NEL, paragraph sep
    with pytest.raises(mail.UnsafeHeader):
        mail.compose(
            item(),
            to="ann\u2028@example.com",
            sender="rc <no@rc.test>",
            page_link="L",
            unsubscribe="U",
        )


def test_people_are_named_by_their_profile_name_in_the_email_and_invite() -> None:
    """Names, not ids (issue 41): the subject, greeting and invite use the display names the
    profiles give; a person without one keeps their id."""
    names = {"ann": "Ann Lee", "ben": "Benedikt"}
    m = mail.compose(
        mutual(),
        to="ann@example.com",
        sender="realconnect <no@rc.test>",
        page_link="L",
        unsubscribe="U",
        attendees={"ann": "ann@example.com", "ben": "ben@example.com"},
        names=names,
    )
    parsed = message_from_bytes(m.message.as_bytes(), policy=policy.default)
    assert parsed["Subject"].startswith("You and Benedikt both said yes")
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("Hello Ann Lee,")
    ics = mail.invite(
        mutual(),
        organizer="realconnect <no@rc.test>",
        attendees={"ann": "ann@example.com", "ben": "ben@example.com"},
        names=names,
    )
    assert ics is not None and b"with Benedikt" in ics and b"CN=Benedikt" in ics
    unnamed = mail.compose(
        mutual(), to="a@x.test", sender="s <s@x.test>", page_link="L", unsubscribe="U"
    )
    assert unnamed.message["Subject"].startswith("You and ben both said yes")


def test_an_email_and_its_invite_in_the_person_s_language() -> None:
    """Worked by hand from the catalogues: the subject, greeting, the pair's sentence (no
    meaningful_kinds in this evidence: the stored sentence is kept), the slot in the
    person's zone and words, and the invite's summary."""
    from services.common import i18n

    de = i18n.words("de", "Europe/Berlin")
    sent = mail.compose(
        mutual(),
        to="ann@example.com",
        sender="rc <no@rc.test>",
        page_link="L",
        unsubscribe="U",
        names={"ben": "Ben"},
        words=de,
    )
    msg = message_from_bytes(sent.message.as_bytes(), policy=policy.default)
    assert msg["Subject"] == "Du und Ben habt beide Ja gesagt: Videoanruf"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("Hallo ann,\n\nIhr habt beide Ja gesagt! Wie wäre es mit einem")
    assert "Vorgeschlagene Zeit:" in text and "in Europe/Lisbon" in text
    assert "Antworte auf deiner Seite" in text
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<html lang='de'>" in html
    [ics] = [p for p in msg.iter_attachments() if p.get_content_type() == "text/calendar"]
    event = Calendar.from_ical(ics.get_content()).walk("VEVENT")[0]
    assert str(event["summary"]) == "realconnect: Videoanruf mit Ben"
    fr = mail.compose(
        item(), to="a@x.org", sender="rc <no@rc.test>", page_link="L", unsubscribe="U",
        names={"ben": "Ben"}, words=i18n.words("fr"),
    )  # fmt: skip
    assert fr.message["Subject"] == "Rencontrer Ben\u00a0? realconnect a une suggestion pour vous"
