"""What every source adapter returns (pure: no I/O imports).

An adapter turns one verified payload into ``Draft`` interactions. A draft names its
counterpart directly (``target``) or, when the payload only holds a platform id whose
handle is not in it (Mastodon's ``in_reply_to_account_id``, a Reddit ``parent_id``, a Slack
IM channel), by a ``target_ref``: a directory key that the normalizer resolves from what
earlier payloads taught it (``learned``). Handles are source-qualified ids such as
``mastodon:@ann@example.social``; the normalizer maps linked handles to person ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)

from schemas.events import InteractionKind

Kind = InteractionKind

#: Every platform model's config. Fields the project does not read are ignored, and a number
#: where the platform's docs of today show a string (an id in an older API version or an SDK's
#: fixture) is read as that string: a real delivery is never refused for a field's type.
PLATFORM = ConfigDict(frozen=True, extra="ignore", coerce_numbers_to_str=True)


def tolerant(default: Any) -> WrapValidator:
    """A field that reads as ``default`` when its value has another shape."""

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            return default

    return WrapValidator(validate)


#: For an optional field that is read only when it makes sense (an attachment, a flag, a
#: parent's id): a value of another shape, say from an older API, is read as absent, so the
#: delivery is acknowledged and the rest of it read. ``Annotated[T | None, Tolerant] = None``.
Tolerant: Final = tolerant(None)
#: The same for a flag (``Annotated[bool, TolerantFlag] = False``): another shape reads false.
TolerantFlag: Final = tolerant(False)
#: The same for a list (``Annotated[list[T], TolerantList] = []``): not a list reads as
#: empty; pair it with pydantic's ``OnErrorOmit[T]`` to drop the items of another shape.
TolerantList: Final = tolerant([])

_KIND = re.compile(r"[^A-Za-z0-9_.:/-]")


class Ignored(BaseModel):
    """A well-formed, authenticated delivery of a kind realconnect does not read (an admin
    or moderation event, a new object kind): answered 2xx and counted, never refused, so the
    platform never counts it as a failed delivery. ``kind`` names it, for the metric and log.
    Each adapter's payload union tags what it does not read as ``ignored``."""

    model_config = ConfigDict(frozen=True)
    kind: str

    @model_validator(mode="before")
    @classmethod
    def _named(cls, data: Any) -> Any:
        if isinstance(data, dict) and set(data) == {"kind"}:
            return data
        return {"kind": cls.kind_of(data)}

    @classmethod
    def kind_of(cls, data: Any) -> str:
        """The kind as the platform names it (bounded; adapters refine it)."""
        if isinstance(data, dict):
            for key in ("type", "t", "kind", "event"):
                if isinstance(data.get(key), str):
                    return kind_label(data[key])
        return "unknown"


def kind_label(*parts: object) -> str:
    """A bounded metric label from a platform's own type names."""
    return _KIND.sub("_", "/".join(str(p) for p in parts if p is not None))[:64] or "unknown"


#: What a directory key resolves to when the thing's author was deleted or removed: a draft
#: whose counterpart is GONE is skipped (there is nobody to meet), never dead-lettered.
GONE: Final = "!gone"

#: Text is capped: scoring needs a sample of what was said, never a whole document.
MAX_TEXT: Final = 5000


@dataclass(frozen=True, slots=True)
class Draft:
    """A canonical interaction, minus the final person ids."""

    event_id: str
    kind: Kind
    actor: str
    occurred_at: datetime
    target: str | None = None
    target_ref: str | None = None
    text: str | None = None
    duration_s: float | None = None
    thread_id: str | None = None
    in_reply_to: str | None = None
    audience: int | None = None  # the actor's followers, when the platform says
    actor_bot: bool = False  # the platform marks the actor as automated
    #: a message to a group conversation (a multi-party DM): the directory key of its member
    #: list. The normalizer makes one interaction per other member (``expand`` in
    #: services/normalizer/normalize.py); ``target`` and ``target_ref`` are then unset.
    members_ref: str | None = None


@dataclass(frozen=True)
class Extraction:
    drafts: list[Draft] = field(default_factory=list)
    #: directory key -> source-qualified handle, learned from this payload
    learned: dict[str, str] = field(default_factory=dict)
    #: why a valid payload yields no interaction (an edit, a deletion, a verification...)
    ignored: str | None = None
    #: group conversation key -> handles this payload shows to be members of it (the author,
    #: the people the delivery was for); the directory adds them to what it knows
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: accounts this payload flags as automated (an account's own bot flag, the
    #: installation's bot user): the normalizer remembers them, so that a reaction, reply or
    #: mention to one later is no exchange, and none is a group member written to
    bots: tuple[str, ...] = ()
    #: handle -> the name the platform shows for the account (Mastodon's display_name,
    #: Discord's global_name): what people see of someone who has no profile here
    names: dict[str, str] = field(default_factory=dict)


def event_id(native: str, kind: str, counterpart: str) -> str:
    """One id per (native event, kind, counterpart): a post that replies to one person and
    mentions two gives three interactions with three stable ids."""
    return f"{native}/{kind}/{counterpart}"


#: the last second Python's datetime can hold (9999-12-31T23:59:59Z)
MAX_EPOCH_S: Final = 253_402_300_799
#: a platform's Unix time in seconds, refused by the payload model when out of range (so
#: that extraction never meets a time it cannot represent)
EpochSeconds = Annotated[float, Field(ge=0, le=MAX_EPOCH_S)]
EpochMicros = Annotated[int, Field(ge=0, le=MAX_EPOCH_S * 1_000_000)]


def _utc_if_naive(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


#: A platform's time: with its offset, or (as some servers and forks send it) without one,
#: read as UTC rather than refused.
PlatformTime = Annotated[datetime, AfterValidator(_utc_if_naive)]


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def clip(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text[:MAX_TEXT] if text else None


_TAG = re.compile(r"<[^>]+>")
_BR = re.compile(r"<br\s*/?>|</p>\s*<p>", re.I)


def html_to_text(html: str | None) -> str | None:
    """Mastodon status content is HTML; scoring wants the words."""
    if not html:
        return None
    import html as htmllib

    return clip(htmllib.unescape(_TAG.sub("", _BR.sub("\n", html))))


def unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def mentions(
    native: str, targets: list[str], skip: tuple[str | None, ...], common: dict[str, Any]
) -> list[Draft]:
    """One ``mention`` draft per distinct target, leaving out ``skip`` (the actor, the person
    already answered)."""
    return [
        Draft(event_id=event_id(native, "mention", t), kind="mention", target=t, **common)
        for t in unique(targets)
        if t not in skip
    ]


def finish(drafts: list[Draft], learned: dict[str, str], **more: Any) -> Extraction:
    if not drafts:
        return Extraction(learned=learned, ignored="no interaction between two people", **more)
    return Extraction(drafts=drafts, learned=learned, **more)


def reaction(
    native: str,
    actor: str,
    owner: str | None,
    ref: str | None,
    at: datetime,
    in_reply_to: str,
    *,
    actor_bot: bool = False,
) -> Extraction:
    """A reaction (a like) to a message whose author is ``owner``, or is found by ``ref``."""
    if owner == actor:
        return Extraction(ignored="reaction to one's own message")
    return Extraction(
        drafts=[
            Draft(
                event_id=event_id(native, "like", owner or ref or ""),
                kind="like",
                actor=actor,
                target=owner,
                target_ref=ref,
                occurred_at=at,
                in_reply_to=in_reply_to,
                actor_bot=actor_bot,
            )
        ]
    )
