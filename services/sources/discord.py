"""Discord gateway dispatches: ``MESSAGE_CREATE`` (replies via ``message_reference`` and
``referenced_message``, user mentions) and ``MESSAGE_REACTION_ADD``.

People are ``discord:<user id>``. A reaction names the message's author in
``message_author_id`` when Discord sends it (``"0"`` or absent means unknown); otherwise the
author comes from the directory of messages seen before (``msg:<message id>``). Reactions
carry no timestamp, so they take the time the delivery was received.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, Discriminator, Field, OnErrorOmit, Tag, TypeAdapter

from services.sources.base import (
    PLATFORM,
    Draft,
    Extraction,
    Ignored,
    PlatformTime,
    Tolerant,
    TolerantFlag,
    TolerantList,
    clip,
    event_id,
    finish,
    kind_label,
    mentions,
    reaction,
    tolerant,
    unique,
)

NAME: Final = "discord"
_CFG = PLATFORM
Snowflake = Annotated[str, Field(pattern=r"^[0-9]{1,20}$")]


#: message types that are a person writing: DEFAULT and REPLY. Every other type is a system
#: message (pins, joins, boosts, thread created, channel follows...) or an app's answer to a
#: command (CHAT_INPUT_COMMAND, CONTEXT_MENU_COMMAND), read as nothing.
#: https://discord.com/developers/docs/resources/message#message-object-message-types
PERSON_TYPES: Final = frozenset({0, 19})
REPLY_TYPE: Final = 19
#: message_reference.type: 0 DEFAULT (a reply), 1 FORWARD (a message shared at a point in time)
FORWARD: Final = 1
#: flags: IS_CROSSPOST (1 << 1), a message published into this channel by a followed one
IS_CROSSPOST: Final = 1 << 1


class User(BaseModel):
    model_config = _CFG
    id: Snowflake
    username: Annotated[str, Field(max_length=128)] | None = None
    #: the name Discord shows for the account (its "display name"), when set
    global_name: Annotated[str | None, Tolerant] = None
    bot: Annotated[bool, TolerantFlag] = False
    #: Discord's own system user (Urgent Message System, Clyde...)
    system: Annotated[bool, TolerantFlag] = False


class MessageReference(BaseModel):
    model_config = _CFG
    message_id: Snowflake | None = None
    type: int = 0


class Referenced(BaseModel):
    """The answered message. Partial copies (no ``author``) are read as unknown: the
    directory then names its author."""

    model_config = _CFG
    id: Snowflake
    author: Annotated[User | None, Tolerant] = None


class Message(BaseModel):
    model_config = _CFG
    id: Snowflake
    channel_id: Snowflake
    author: User
    content: Annotated[str, Field(max_length=100_000)] = ""
    timestamp: PlatformTime
    mentions: Annotated[list[OnErrorOmit[User]], TolerantList] = []
    message_reference: Annotated[MessageReference | None, Tolerant] = None
    referenced_message: Referenced | None = None
    type: int = 0
    flags: Annotated[int, tolerant(0)] = 0
    #: set when a webhook, not a person, posted it
    webhook_id: Annotated[Snowflake | None, Tolerant] = None


class Member(BaseModel):
    model_config = _CFG
    user: User | None = None


class Reaction(BaseModel):
    model_config = _CFG
    member: Annotated[Member | None, Tolerant] = None
    user_id: Snowflake
    message_id: Snowflake
    channel_id: Snowflake
    message_author_id: Annotated[Snowflake | None, Tolerant] = None


class MessageCreate(BaseModel):
    model_config = _CFG
    t: Literal["MESSAGE_CREATE"]
    op: int = 0
    d: Message


class ReactionAdd(BaseModel):
    model_config = _CFG
    t: Literal["MESSAGE_REACTION_ADD"]
    op: int = 0
    d: Reaction


class OtherDispatch(Ignored):
    """Any other dispatch (``MESSAGE_UPDATE``, ``TYPING_START``, ``GUILD_*``...) or opcode."""

    @classmethod
    def kind_of(cls, data: Any) -> str:
        if isinstance(data, dict) and isinstance(data.get("t"), str):
            return kind_label(data["t"])
        return kind_label("op", data.get("op") if isinstance(data, dict) else None)


def _tag(v: Any) -> str | None:
    """The union's tag: ``None`` (refused, 422) for a body that is no gateway payload."""
    if not isinstance(v, dict):
        return getattr(v, "t", None) if isinstance(v, BaseModel) else None
    t = v.get("t")
    if t in ("MESSAGE_CREATE", "MESSAGE_REACTION_ADD"):
        return str(t)
    return "other" if isinstance(t, str) or isinstance(v.get("op"), int) else None


Payload = Annotated[
    Annotated[MessageCreate, Tag("MESSAGE_CREATE")]
    | Annotated[ReactionAdd, Tag("MESSAGE_REACTION_ADD")]
    | Annotated[OtherDispatch, Tag("other")],
    Discriminator(_tag),
]
PAYLOAD: Final = TypeAdapter(Payload)


def _who(user_id: str) -> str:
    return f"discord:{user_id}"


def extract(payload: MessageCreate | ReactionAdd, *, received_at: datetime) -> Extraction:
    if isinstance(payload, ReactionAdd):
        r = payload.d
        actor = _who(r.user_id)
        known = r.message_author_id not in (None, "0")
        owner = _who(r.message_author_id) if known else None  # type: ignore[arg-type]
        ref = None if owner else f"msg:{r.message_id}"
        native = f"discord:{r.message_id}:reaction:{r.user_id}"
        bot = bool(r.member and r.member.user and r.member.user.bot)
        x = reaction(
            native, actor, owner, ref, received_at, f"discord:{r.message_id}", actor_bot=bot
        )
        return replace(x, bots=(actor,)) if bot else x

    m = payload.d
    # accounts Discord flags as bots (the installation's own among them): a reaction to one
    # of their messages later names only the author's id, so the normalizer remembers them
    flagged = [m.author, *m.mentions]
    if m.referenced_message is not None and m.referenced_message.author is not None:
        flagged.append(m.referenced_message.author)
    bots = tuple(unique([_who(u.id) for u in flagged if u.bot]))
    names = {_who(u.id): n for u in flagged if (n := (u.global_name or "").strip())}
    if m.webhook_id or m.author.system:
        return Extraction(ignored="posted by a webhook or by Discord itself, not a person")
    if m.type not in PERSON_TYPES:  # an app's answer to a command among them
        return Extraction(ignored=f"message type {m.type} (a system or app message)", bots=bots)
    if m.flags & IS_CROSSPOST:
        return Extraction(ignored="crossposted from a followed channel")
    actor = _who(m.author.id)
    learned = {f"msg:{m.id}": actor}
    native = f"discord:{m.id}"
    common: dict[str, Any] = {
        "actor": actor,
        "occurred_at": m.timestamp,
        "text": clip(m.content),
        "thread_id": f"discord:channel:{m.channel_id}",
        "actor_bot": m.author.bot,
    }
    drafts: list[Draft] = []
    reference = m.message_reference
    ref_id = reference.message_id if reference else None
    if reference is not None and reference.type == FORWARD and ref_id:
        # a forward shares someone's message; its snapshot has no author: the directory
        # knows it when the original was seen
        common["in_reply_to"] = f"discord:{ref_id}"
        ref_key = f"msg:{ref_id}"
        drafts.append(
            Draft(
                event_id=event_id(native, "share", ref_key),
                kind="share",
                target_ref=ref_key,
                **common,
            )
        )
        return finish(drafts, learned, bots=bots, names=names)
    replied: str | None = None
    to_bot = False
    answered = m.referenced_message.author if m.referenced_message is not None else None
    if m.referenced_message is not None and answered is not None:
        learned[f"msg:{m.referenced_message.id}"] = _who(answered.id)
        replied = _who(answered.id)
        to_bot = answered.bot
    # "referenced_message": null (present, but null) means the answered message was deleted
    gone = "referenced_message" in m.model_fields_set and m.referenced_message is None
    if m.type == REPLY_TYPE and ref_id and not gone:
        common["in_reply_to"] = f"discord:{ref_id}"
        key = None if replied else f"msg:{ref_id}"
        if replied != actor and not to_bot:  # answering a bot is not an exchange with a person
            drafts.append(
                Draft(
                    event_id=event_id(native, "reply", replied or key or ""),
                    kind="reply",
                    target=replied,
                    target_ref=key,
                    **common,
                )
            )
    people = [_who(u.id) for u in m.mentions if not u.bot]  # mentioning a bot: not a person
    drafts += mentions(native, people, (actor, replied), common)
    return finish(drafts, learned, bots=bots, names=names)
