"""Chat messages for feed items, with answer buttons (pure: no I/O).

- Slack: a Block Kit message (https://api.slack.com/reference/block-kit/blocks): a section
  with the suggestion, the proposed time, and an ``actions`` block of buttons whose
  ``value`` is ``<item id>|<action>``.
- Discord: a message with components
  (https://discord.com/developers/docs/interactions/message-components): one action row of
  buttons whose ``custom_id`` is ``rc|<item id>|<action>``.

A button names the item and the action, never the person: who answers is the platform's
verified user of the interaction, mapped to the person who linked that account, and a
person can only answer items of their own feed (services/feeds/chat.py). After an answer the
message is replaced by the same text, the answer said back, and no buttons (or "We met"
once the meetup is on).

Every text goes through the person's catalogue (``Words``). Names and sentences are escaped
for each platform's markup, and a Discord message allows no mentions (a name such as
``@everyone`` pings nobody).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from schemas.people import FeedItem
from services.common.words import ENGLISH, Words
from services.matcher import sentences

Platform = Literal["slack", "discord"]
Action = Literal["accept", "decline", "snooze", "met"]
ACTIONS: Final[tuple[Action, ...]] = ("accept", "decline", "snooze", "met")
#: Discord's custom_id prefix (a component of another app's message is not ours)
PREFIX: Final = "rc"
#: Slack: a section's text is at most 3,000 characters; Discord: content at most 2,000
SLACK_TEXT_MAX: Final = 3000
DISCORD_CONTENT_MAX: Final = 2000
_SLACK_ESCAPES: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_DISCORD_MARKUP: Final = re.compile(r"([\\*_~`|>#\[\]()<@:-])")


@dataclass(frozen=True)
class Said:
    """What a message says of one item, in plain text (before each platform's markup)."""

    headline: str
    sentence: str
    slot: tuple[str, ...]
    page_hint: str


@dataclass(frozen=True)
class Pressed:
    """A button press: the item and the action."""

    item_id: str
    action: Action


def offered(item: FeedItem, meetup_on: bool) -> tuple[Action, ...]:
    """The buttons an item offers: yes, no and later until it is answered; "We met" once
    the meetup is on (issue 41: one step at a time), until it is reported."""
    if item.response == "met":
        return ()
    if meetup_on:
        return ("met",)
    if item.type in ("suggestion", "group") and item.response in (None, "snoozed"):
        return ("accept", "decline", "snooze")
    return ()


def said(item: FeedItem, names: Mapping[str, str] | None = None, w: Words = ENGLISH) -> Said:
    """The item's words: who, why, when."""
    named = w.list([(names or {}).get(p) or p for p in item.others])
    if item.type == "mutual":
        headline = w.gettext("You and {other} both said yes").format(other=named)
    elif item.type == "group_on":
        headline = w.gettext("It's on: you, {others}").format(others=named)
    elif item.type == "group":
        headline = w.gettext("Meet {other} together?").format(other=named)
    else:
        headline = w.gettext("Meet {other}?").format(other=named)
    sentence = sentences.item(item.type, item.evidence, item.meetup, len(item.members), w)
    return Said(
        headline=headline,
        sentence=sentence or item.explanation,
        slot=tuple(sentences.slot(item.meetup, w)),
        page_hint=w.gettext("Answer here, or on your realconnect page."),
    )


def label(action: Action, w: Words = ENGLISH) -> str:
    match action:
        case "accept":
            return w.gettext("Yes, I'd like to meet")
        case "decline":
            return w.gettext("No, thanks")
        case "snooze":
            return w.gettext("Ask me in 3 days")
        case "met":
            return w.gettext("We met")


def answered(response: str | None, w: Words = ENGLISH, meetup_on: bool = False) -> str | None:
    """The person's answer said back to them (None: not answered)."""
    match response:
        case "accepted" if meetup_on:
            return w.gettext("You said yes, and so did the others: the meetup is on.")
        case "accepted":
            return w.gettext("You said yes. We'll tell you when the meetup is on.")
        case "declined":
            return w.gettext("You said no, thanks. Nobody is told.")
        case "snoozed":
            return w.gettext("We'll ask you again in a few days.")
        case "met":
            return w.gettext("You met. Thank you for telling us!")
    return None


def parse(value: str, platform: Platform) -> Pressed | None:
    """A button's value (Slack) or custom_id (Discord) as ``slack``/``discord`` wrote it;
    None for anything else (another app's component, a tampered value)."""
    parts = value.split("|")
    if platform == "discord":
        if len(parts) != 3 or parts[0] != PREFIX:
            return None
        parts = parts[1:]
    if len(parts) != 2 or parts[1] not in ACTIONS or not 0 < len(parts[0]) <= 80:
        return None
    action: Action = parts[1]  # checked just above
    return Pressed(parts[0], action)


# -- Slack ----------------------------------------------------------------------------------


def slack_escape(text: str) -> str:
    """Text for Slack's mrkdwn: ``& < >`` escaped (what Slack asks), so a name cannot make
    a link or a mention."""
    return "".join(_SLACK_ESCAPES.get(c, c) for c in text)


def slack(
    item: FeedItem,
    *,
    names: Mapping[str, str] | None = None,
    w: Words = ENGLISH,
    meetup_on: bool = False,
) -> dict[str, Any]:
    """``chat.postMessage``/``chat.update`` arguments (``text`` and ``blocks``)."""
    s = said(item, names, w)
    body = f"*{slack_escape(s.headline)}*\n{slack_escape(s.sentence)}"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": body[:SLACK_TEXT_MAX]}}
    ]
    if s.slot:
        when = "\n".join([slack_escape(w.gettext("Proposed time:")), *map(slack_escape, s.slot)])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": when}})
    buttons = offered(item, meetup_on)
    if buttons:
        blocks.append(
            {
                "type": "actions",
                "block_id": f"rc:{item.item_id}"[:255],
                "elements": [
                    {
                        "type": "button",
                        "action_id": f"rc_{a}",
                        "text": {"type": "plain_text", "text": label(a, w)[:75]},
                        "value": f"{item.item_id}|{a}",
                        **({"style": "primary"} if a in ("accept", "met") else {}),
                    }
                    for a in buttons
                ],
            }
        )
    note = answered(item.response, w, meetup_on) if not buttons or item.response else s.page_hint
    if note:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(note)}]}
        )
    # ``text`` is what a notification and a screen reader say
    return {"text": f"{s.headline} {s.sentence}"[:SLACK_TEXT_MAX], "blocks": blocks}


# -- Discord --------------------------------------------------------------------------------


def discord_escape(text: str) -> str:
    """Text for Discord's markdown: every markup character escaped with a backslash."""
    return _DISCORD_MARKUP.sub(r"\\\1", text)


#: Discord button styles: 1 primary, 2 secondary, 3 success, 4 danger
_STYLE: Final[dict[Action, int]] = {"accept": 3, "decline": 2, "snooze": 2, "met": 1}


def discord(
    item: FeedItem,
    *,
    names: Mapping[str, str] | None = None,
    w: Words = ENGLISH,
    meetup_on: bool = False,
) -> dict[str, Any]:
    """A ``POST /channels/{id}/messages`` body (also the ``data`` of an UPDATE_MESSAGE
    interaction response)."""
    s = said(item, names, w)
    lines = [f"**{discord_escape(s.headline)}**", discord_escape(s.sentence)]
    if s.slot:
        lines += [discord_escape(w.gettext("Proposed time:")), *map(discord_escape, s.slot)]
    buttons = offered(item, meetup_on)
    note = answered(item.response, w, meetup_on) if not buttons or item.response else s.page_hint
    if note:
        lines.append(f"-# {discord_escape(note)}")  # Discord's small text
    components = (
        [
            {
                "type": 1,
                "components": [
                    {
                        "type": 2,
                        "style": _STYLE[a],
                        "label": label(a, w)[:80],
                        "custom_id": f"{PREFIX}|{item.item_id}|{a}"[:100],
                    }
                    for a in buttons
                ],
            }
        ]
        if buttons
        else []
    )
    return {
        "content": "\n".join(lines)[:DISCORD_CONTENT_MAX],
        "components": components,
        "allowed_mentions": {"parse": []},
    }
