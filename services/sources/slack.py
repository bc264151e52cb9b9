"""Slack Events API: ``message`` events in channels, threads (``thread_ts``) and DMs,
``app_mention`` and ``reaction_added``; ``url_verification`` is answered by the endpoint.

People are ``slack:<team>:<user>``. A message's native id is ``<team>:<channel>:<ts>``, so the
``message`` and ``app_mention`` events of one message give the same interaction ids (and are
deduplicated). Counterparts missing from the event (a thread parent, the other person in a
DM, a reacted-to message's author) come from the directory of messages seen before.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, Discriminator, Field, OnErrorOmit, Tag, TypeAdapter

from services.sources.base import (
    GONE,
    PLATFORM,
    Draft,
    Extraction,
    Ignored,
    Tolerant,
    TolerantFlag,
    TolerantList,
    clip,
    event_id,
    finish,
    from_epoch,
    kind_label,
    mentions,
    reaction,
    unique,
)

NAME: Final = "slack"
_CFG = PLATFORM
#: the inner event types read; every other (``channel_created``, ``team_join``,
#: ``app_uninstalled``, ``tokens_revoked``, ...) is acknowledged and ignored
READ: Final = frozenset({"message", "app_mention", "reaction_added"})
SlackId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
#: "seconds.micros", or (in a few documented examples) the digits run together
Ts = Annotated[str, Field(pattern=r"^(\d{1,11}(\.\d{1,9})?|\d{13,17})$")]
_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
#: Subtypes that are not someone saying something new.
_SKIP_SUBTYPES: Final = {
    "message_changed",
    "message_deleted",
    "message_replied",
    "bot_message",
    "channel_join",
    "channel_leave",
    "channel_topic",
    "channel_purpose",
}


class UrlVerification(BaseModel):
    model_config = _CFG
    type: Literal["url_verification"]
    challenge: Annotated[str, Field(max_length=1024)]


class Item(BaseModel):
    model_config = _CFG
    type: str
    channel: SlackId | None = None
    ts: Ts | None = None


class Root(BaseModel):
    """The thread's first message, which a ``thread_broadcast`` carries."""

    model_config = _CFG
    user: SlackId | None = None
    ts: Ts | None = None


class Attachment(BaseModel):
    """A message shared into another conversation arrives as an attachment with
    ``is_share`` (or ``is_msg_unfurl`` for a pasted message link) naming its ``author_id``."""

    model_config = _CFG
    is_share: Annotated[bool, TolerantFlag] = False
    is_msg_unfurl: Annotated[bool, TolerantFlag] = False
    author_id: Annotated[SlackId | None, Tolerant] = None
    channel_id: Annotated[SlackId | None, Tolerant] = None
    ts: Annotated[Ts | None, Tolerant] = None


class Inner(BaseModel):
    """A ``message``, ``app_mention`` or ``reaction_added`` event: who, where and when are
    validated; the rest is read when it has the shape the docs give, else left unread."""

    model_config = _CFG
    type: Annotated[str, Field(max_length=64)]
    subtype: Annotated[str, Field(max_length=64)] | None = None
    user: SlackId | None = None
    text: Annotated[str, Field(max_length=100_000)] | None = None
    ts: Ts | None = None
    event_ts: Ts | None = None
    channel: SlackId | None = None
    thread_ts: Annotated[Ts | None, Tolerant] = None
    parent_user_id: Annotated[SlackId | None, Tolerant] = None
    root: Annotated[Root | None, Tolerant] = None
    attachments: Annotated[list[OnErrorOmit[Attachment]], TolerantList] = []
    channel_type: Annotated[Annotated[str, Field(max_length=32)] | None, Tolerant] = None
    bot_id: Annotated[str | None, Tolerant] = None
    item: Annotated[Item | None, Tolerant] = None
    item_user: Annotated[SlackId | None, Tolerant] = None


class Authorization(BaseModel):
    model_config = _CFG
    user_id: SlackId | None = None
    is_bot: Annotated[bool, TolerantFlag] = False


class EventCallback(BaseModel):
    model_config = _CFG
    type: Literal["event_callback"]
    team_id: SlackId
    event_id: Annotated[str, Field(max_length=128)] | None = None
    event: Inner
    authorizations: Annotated[list[OnErrorOmit[Authorization]], TolerantList] = []
    authed_users: Annotated[list[OnErrorOmit[SlackId]], TolerantList] = []


class Other(Ignored):
    """Any other envelope (``app_rate_limited``, types Slack adds) or inner event type."""

    @classmethod
    def kind_of(cls, data: Any) -> str:
        inner = data.get("event") if isinstance(data, dict) else None
        inner_type = inner.get("type") if isinstance(inner, dict) else None
        return kind_label(data.get("type") if isinstance(data, dict) else None, inner_type)


def _shape(v: Any) -> str | None:
    """The union's tag: ``None`` (refused, 422) for a body that is not an envelope."""
    if not isinstance(v, dict):
        return getattr(v, "type", None)  # an instance, validated again
    t = v.get("type")
    if t == "event_callback":
        inner = v.get("event")
        if isinstance(inner, dict) and isinstance(inner.get("type"), str):
            return "event_callback" if inner["type"] in READ else "ignored"
        return "event_callback"  # refused: the envelope has no event
    if t == "url_verification":
        return "url_verification"
    return "ignored" if isinstance(t, str) else None


Payload = Annotated[
    Annotated[UrlVerification, Tag("url_verification")]
    | Annotated[EventCallback, Tag("event_callback")]
    | Annotated[Other, Tag("ignored")],
    Discriminator(_shape),
]
PAYLOAD: Final = TypeAdapter(Payload)


def slack_time(ts: str) -> datetime:
    """Slack timestamps are "seconds.micros"; a few documented examples run them together."""
    if "." not in ts and len(ts) > 12:
        return from_epoch(int(ts) / 1_000_000)
    return from_epoch(float(ts))


def extract(payload: UrlVerification | EventCallback) -> Extraction:
    """(An ``Other`` delivery is read as nothing before this: services/sources/__init__.py.)"""
    if isinstance(payload, UrlVerification):
        return Extraction(ignored="url_verification")
    team, e = payload.team_id, payload.event

    def who(user: str) -> str:
        return f"slack:{team}:{user}"

    # the installation's own bot user (named in the delivery's authorizations): its messages,
    # replies and reactions to them, mentions of it and direct messages with it are not
    # exchanges between people
    app_users = {a.user_id for a in payload.authorizations if a.is_bot and a.user_id}
    # the people the delivery was for: members of the conversation it came from
    readers = [a.user_id for a in payload.authorizations if a.user_id and not a.is_bot]
    readers += payload.authed_users
    if e.type == "reaction_added":
        if e.item_user in app_users:
            return Extraction(ignored="a reaction to the app's own message")
        return _reaction(team, e, who)
    if e.type not in ("message", "app_mention") or (e.subtype in _SKIP_SUBTYPES):
        return Extraction(ignored=f"{e.type}/{e.subtype}")
    if not e.user or not e.ts or not e.channel:
        return Extraction(ignored="message without a user (bot or system)")
    if e.user in app_users:  # remembered as nobody: a reply or reaction to it is no exchange
        return Extraction(
            learned={f"msg:{team}:{e.channel}:{e.ts}": GONE},
            ignored="a message by the app's own bot user",
        )
    if (
        e.channel_type == "im"
        and payload.authorizations
        and all(a.is_bot for a in payload.authorizations)
    ):
        return Extraction(ignored="a direct message with the app")
    actor = who(e.user)
    native = f"slack:{team}:{e.channel}:{e.ts}"
    at = slack_time(e.ts)
    text = clip(e.text)
    learned = {f"msg:{team}:{e.channel}:{e.ts}": actor}
    common: dict[str, Any] = {
        "actor": actor,
        "occurred_at": at,
        "text": text,
        "actor_bot": e.bot_id is not None,  # an app posting as (or beside) a user
    }
    drafts: list[Draft] = []
    replied: str | None = None
    if e.thread_ts and e.thread_ts != e.ts:
        common["thread_id"] = f"slack:{team}:{e.channel}:{e.thread_ts}"
        common["in_reply_to"] = common["thread_id"]
        root_user = e.parent_user_id or (e.root.user if e.root else None)  # thread_broadcast
        replied = who(root_user) if root_user else None
        ref = None if replied else f"msg:{team}:{e.channel}:{e.thread_ts}"
        if replied != actor and root_user not in app_users:
            drafts.append(
                Draft(
                    event_id=event_id(native, "reply", replied or ref or ""),
                    kind="reply",
                    target=replied,
                    target_ref=ref,
                    **common,
                )
            )
    elif e.channel_type == "im":
        direct, peer_of = _direct(f"im:{team}:{e.channel}", e.user, readers, native, common, who)
        drafts.append(direct)
        learned |= peer_of
        replied = direct.target
    group: dict[str, tuple[str, ...]] = {}
    if e.channel_type == "mpim":  # a group DM: a message to each other member
        conversation = f"members:{team}:{e.channel}"
        group[conversation] = tuple(who(u) for u in unique([e.user, *readers]))
        eid = event_id(native, "message", conversation)
        drafts.append(Draft(event_id=eid, kind="message", members_ref=conversation, **common))
    shared = [a for a in e.attachments if (a.is_share or a.is_msg_unfurl) and a.author_id and a.ts]
    for a in shared:  # a shared message: a share of its author's words, not a reply
        author = who(a.author_id)  # type: ignore[arg-type]
        if author not in (actor, replied) and a.author_id not in app_users:
            drafts.append(
                Draft(
                    event_id=event_id(native, "share", author),
                    kind="share",
                    target=author,
                    **{**common, "in_reply_to": f"slack:{team}:{a.channel_id}:{a.ts}"},
                )
            )
    targets = [who(user) for user in _MENTION.findall(e.text or "") if user not in app_users]
    drafts += mentions(native, targets, (actor, replied), common)
    return finish(drafts, learned, members=group, bots=tuple(who(u) for u in sorted(app_users)))


def _direct(
    im: str, user: str, readers: list[str], native: str, common: dict[str, Any], who: Any
) -> tuple[Draft, dict[str, str]]:
    """A direct message: to the other person, when the delivery names them (a non-bot
    authorization, ``authed_users``), else to whom the directory says (``<im>:peer-of:``);
    and what the directory learns of the pair."""
    peers = [u for u in readers if u != user]
    if not peers:
        ref = f"{im}:peer-of:{user}"
        return Draft(
            event_id=event_id(native, "message", ref), kind="message", target_ref=ref, **common
        ), {}
    peer = who(peers[0])
    learned = {f"{im}:peer-of:{user}": peer, f"{im}:peer-of:{peers[0]}": common["actor"]}
    eid = event_id(native, "message", peer)
    return Draft(event_id=eid, kind="message", target=peer, **common), learned


def _reaction(team: str, e: Inner, who: Any) -> Extraction:
    if not e.user or not e.item or not e.item.ts or not e.item.channel or not e.event_ts:
        return Extraction(ignored="reaction without a user or message")
    actor = who(e.user)
    owner = who(e.item_user) if e.item_user else None
    ref = None if owner else f"msg:{team}:{e.item.channel}:{e.item.ts}"
    native = f"slack:{team}:{e.item.channel}:{e.item.ts}:reaction:{e.user}:{e.event_ts}"
    return reaction(
        native,
        actor,
        owner,
        ref,
        slack_time(e.event_ts),
        f"slack:{team}:{e.item.channel}:{e.item.ts}",
    )
