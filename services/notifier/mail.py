"""Emails and calendar invites for feed items (pure: no I/O).

- A new item: a plain-text and HTML email with the explanation and a sign-in link to the
  person's page, where they answer.
- A mutual item (both said yes): the same, with the proposed meetup attached as an RFC 5545
  invite (``text/calendar; method=REQUEST``): organizer, both people as attendees, the slot in
  UTC and each person's local time in the text, and a ``UID`` derived from the item so that an
  update or a redelivery is the same event.

Every message's ``Message-ID`` is derived from the person and the item, so a redelivery after
a crash is the same message (mail clients and providers collapse it); ``List-Unsubscribe``
with ``List-Unsubscribe-Post`` (RFC 8058) lets a mail client turn the email channel off in one
click.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from typing import Final
from urllib.parse import quote

from icalendar import Calendar, Event, vCalAddress, vText

from schemas.people import FeedItem
from schemas.text import UNSAFE_CATEGORIES
from services.common.words import ENGLISH, Words
from services.matcher import sentences

DOMAIN: Final = "realconnect"
PRODID: Final = "-//realconnect//meetup suggestions//EN"


@dataclass(frozen=True)
class Mail:
    """One email to send: its envelope and its message."""

    message_id: str
    to: str
    message: EmailMessage


class UnsafeHeader(ValueError):
    """A value that cannot be made safe for a header (an address with a line break)."""


def header_text(value: str) -> str:
    """``value`` with every character that could break or disguise a header replaced by
    U+FFFD (a person id or name in a subject line: shown, never obeyed): those of
    ``schemas.text.UNSAFE_CATEGORIES``, line and paragraph separators among them
    (str.splitlines breaks on them, and the email package refuses a header with a break)."""
    return "".join("\ufffd" if unicodedata.category(c) in UNSAFE_CATEGORIES else c for c in value)


def header_address(value: str) -> str:
    """An address for To/From: refused (``UnsafeHeader``) if it holds anything
    ``header_text`` would replace: a changed address would reach somebody else."""
    if header_text(value) != value:
        raise UnsafeHeader(f"the address {value!r} holds a control or invisible character")
    return value


def message_id(person_id: str, item_id: str) -> str:
    digest = hashlib.sha256(f"{person_id}|{item_id}".encode()).hexdigest()[:40]
    return f"<{digest}@{DOMAIN}>"


def event_uid(item: FeedItem) -> str:
    """The same for both people's copies of one meetup (they share the item id)."""
    return f"{item.item_id}@{DOMAIN}"


def unsubscribe_sig(key: str, person_id: str) -> str:
    """HMAC that makes an unsubscribe link work for this person only (no login needed:
    RFC 8058 one-click)."""
    mac = hmac.new(key.encode(), f"unsubscribe|{person_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def signin_url(public_url: str, token: str) -> str:
    """A one-time sign-in link to the person's page (``token`` from ``FeedStore.mint_signin``)."""
    return f"{public_url.rstrip('/')}/app/signin?t={token}"


def unsubscribe_url(public_url: str, key: str, person_id: str) -> str:
    return (
        f"{public_url.rstrip('/')}/v1/unsubscribe?p={quote(person_id, safe='')}"
        f"&s={unsubscribe_sig(key, person_id)}"
    )


def _names(
    people: tuple[str, ...],
    names: Mapping[str, str] | None = None,
    words: Words = ENGLISH,
    *first: str,
) -> str:
    """People as an email names them (by their profile's name, else their id or handle),
    after ``first`` ("you"), joined as the language joins a list."""
    return words.list([*first, *((names or {}).get(p) or p for p in people)])


def invite(
    item: FeedItem,
    *,
    organizer: str,
    attendees: dict[str, str | None],
    method: str = "REQUEST",
    names: Mapping[str, str] | None = None,
    words: Words = ENGLISH,
) -> bytes | None:
    """The meetup of a mutual item as an iCalendar object (None: no slot was found, e.g.
    people with no shared daytime). ``attendees``: person id -> email (None: not known)."""
    window = (item.meetup or {}).get("window") or {}
    if item.type not in ("mutual", "group_on") or not window.get("start"):
        return None
    start = datetime.fromisoformat(window["start"]).astimezone(UTC)
    end = (
        datetime.fromisoformat(window["end"]).astimezone(UTC)
        if window.get("end")
        else start + timedelta(hours=1)
    )
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", method)
    ev = Event()
    ev.add("uid", event_uid(item))
    ev.add("dtstamp", item.delivered_at.astimezone(UTC))
    ev.add("dtstart", start)
    ev.add("dtend", end)
    ev.add("sequence", 0)
    ev.add("status", "CONFIRMED" if method == "REQUEST" else "TENTATIVE")
    w = words
    other = header_text(_names(item.others, names, w))
    what = sentences.what(item.meetup, w)
    ev.add(
        "summary",
        "realconnect: " + w.gettext("{what} with {people}").format(what=what, people=other),
    )
    zones = "\n".join(sentences.slot(item.meetup, w))
    said = sentences.item(item.type, item.evidence, item.meetup, len(item.members), w)
    ev.add(
        "description",
        f"{said or item.explanation}\n\n"
        + w.gettext("Proposed: {what}").format(what=what)
        + f"\n{zones}\n\n"
        + w.gettext(
            "Move it to a time that suits everyone; reply to each other, not to realconnect."
        ),
    )
    if item.meetup and item.meetup.get("city"):
        ev.add("location", item.meetup["city"])
    org_name, org_addr = getaddresses([organizer])[0]
    org = vCalAddress(f"mailto:{org_addr}")
    org.params["cn"] = vText(org_name or "realconnect")
    ev.add("organizer", org)
    for person, email in sorted(attendees.items()):
        if not email:
            continue
        att = vCalAddress(f"mailto:{header_address(email)}")
        att.params["cn"] = vText(header_text((names or {}).get(person) or person))
        att.params["role"] = vText("REQ-PARTICIPANT")
        att.params["partstat"] = vText("ACCEPTED")
        ev.add("attendee", att, encode=False)
    cal.add_component(ev)
    data: bytes = cal.to_ical()
    return data


def compose(
    item: FeedItem,
    *,
    to: str,
    sender: str,
    page_link: str,
    unsubscribe: str,
    attendees: dict[str, str | None] | None = None,
    names: Mapping[str, str] | None = None,
    words: Words = ENGLISH,
) -> Mail:
    """The email for one item of ``item.person_id``'s feed, in ``words``' language."""
    w = words
    mid = message_id(item.person_id, item.item_id)
    other = _names(item.others, names, w)
    me = (names or {}).get(item.person_id) or item.person_id
    what = sentences.what(item.meetup, w)
    if item.type == "mutual":
        subject = w.gettext("You and {other} both said yes: {what}")
    elif item.type == "group_on":
        subject = w.gettext("It's on: {everyone} said yes to {what}")
    elif item.type == "group":
        subject = w.gettext("Meet {other} together? realconnect has a group suggestion for you")
    else:
        subject = w.gettext("Meet {other}? realconnect has a suggestion for you")
    everyone = _names(item.others, names, w, w.pgettext("person", "you"))
    subject = subject.format(other=other, what=what, everyone=everyone)
    said = sentences.item(item.type, item.evidence, item.meetup, len(item.members), w)
    explanation = said or item.explanation
    slot = sentences.slot(item.meetup, w)
    hello = w.gettext("Hello {name},").format(name=me)
    text_lines = [hello, "", explanation, ""]
    if slot:
        text_lines += [w.gettext("Proposed time:"), *(f"  {line}" for line in slot), ""]
    text_lines += [
        w.gettext("Answer on your page (this link signs you in; it works once and expires):"),
        page_link,
        "",
        w.gettext("Do not want these emails? Turn them off on your page, or here:"),
        unsubscribe,
    ]
    # long lines allowed (RFC 5322's limit is 998): a header such as List-Unsubscribe must
    # keep its URL as it is, not folded into encoded words
    msg = EmailMessage(policy=policy.default.clone(max_line_length=998))
    msg["Subject"] = header_text(subject)
    msg["From"] = header_address(sender)
    msg["To"] = header_address(to)
    msg["Date"] = format_datetime(item.delivered_at.astimezone(UTC))
    msg["Message-ID"] = mid
    msg["List-Unsubscribe"] = f"<{unsubscribe}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Realconnect-Item"] = item.item_id
    msg.set_content("\n".join(text_lines))
    esc = html.escape
    slot_html = "".join(f"<li>{esc(line)}</li>" for line in slot)
    msg.add_alternative(
        f"<!doctype html><html lang='{esc(w.language)}'>"
        "<body style='font-family:sans-serif;max-width:36em'>"
        f"<p>{esc(hello)}</p><p>{esc(explanation)}</p>"
        + (f"<p>{esc(w.gettext('Proposed time:'))}</p><ul>{slot_html}</ul>" if slot_html else "")
        + f"<p><a href='{esc(page_link)}'>{esc(w.gettext('Answer on your page'))}</a> "
        + esc(w.gettext("(this link signs you in once and expires)."))
        + "</p>"
        f"<p style='font-size:small'><a href='{esc(unsubscribe)}'>"
        f"{esc(w.gettext('Stop these emails'))}</a></p>"
        "</body></html>",
        subtype="html",
    )
    if item.type in ("mutual", "group_on"):
        ics = invite(
            item,
            organizer=sender,
            attendees=attendees or {item.person_id: to},
            names=names,
            words=w,
        )
        if ics is not None:
            msg.add_attachment(
                ics,
                maintype="text",
                subtype="calendar",
                params={"method": "REQUEST"},
                filename="meetup.ics",
            )
    # a fixed boundary: a redelivery of the same item is the same bytes, bar the link
    digest = mid.strip("<>").split("@")[0][:24]
    if msg.is_multipart():
        msg.set_boundary(f"=_rc_{digest}")
    return Mail(message_id=mid, to=getaddresses([to])[0][1], message=msg)
