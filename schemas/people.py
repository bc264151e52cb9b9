"""What people say about themselves: preferences (consent) and feed items."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    TypeAdapter,
    field_validator,
)

from schemas.webhook_targets import check_url

HourMinute = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["22:00"])]


class QuietHours(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    start: HourMinute
    end: HourMinute


class Preferences(BaseModel):
    """A person's consent and preferences. Nobody is matched before ``opted_in``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the version of this format (a record written before formats carried one reads as 1;
    #: a change a reader of the last version could not read takes the next number)
    v: Literal[1] = 1

    opted_in: bool = False
    paused_until: date | None = None
    time_zone: Annotated[str, Field(max_length=64)] = "UTC"
    quiet_hours: QuietHours | None = None
    max_per_week: Annotated[int, Field(ge=0, le=100)] = 3
    #: confidential: never shown to anyone, never suggested together
    never_with: Annotated[list[Annotated[str, Field(max_length=256)]], Field(max_length=1000)] = []
    #: None = every source may be used
    sources: list[Annotated[str, Field(max_length=32)]] | None = None
    #: Optional: also POST each new item to this URL, signed (see GET /v1/me/webhook)
    webhook_url: Annotated[str, Field(max_length=2048, pattern=r"^https?://[^\s]+$")] | None = None
    #: where new items are sent: "email" needs ``email``, "webhook" needs ``webhook_url``,
    #: "slack" and "discord" an account on it the person linked (a DM from the bot)
    channels: Annotated[list[Channel], Field(max_length=5)] = ["page", "webhook"]
    #: Optional: where the "email" channel sends items, and meetups as calendar invites
    email: Annotated[EmailStr, Field(max_length=254)] | None = None
    #: the language of the page, emails, invites and chat messages (None: the browser's, on
    #: the page; English elsewhere). One of ``services.common.words.LANGUAGES``.
    language: Literal["en", "de", "fr"] | None = None

    def wants(self, channel: Channel) -> bool:
        """Whether a new item goes out on ``channel`` (it is chosen and has its address)."""
        if channel not in self.channels:
            return False
        if channel == "email":
            return self.email is not None
        if channel == "webhook":
            return self.webhook_url is not None
        return True

    @field_validator("webhook_url")
    @classmethod
    def _target(cls, v: str | None) -> str | None:
        # the URL's shape (a valid host and port, no credentials); where it may point
        # (https in prod, no non-public address) is the feeds service's and the notifier's
        if v is not None:
            check_url(v, require_https=False, allow_private=True)
        return v

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import available_timezones

        if v not in available_timezones() and v != "UTC":
            raise ValueError("not an IANA time zone name")
        return v


#: Where new items reach a person. The page (the feed, also the JSON API) always holds them:
#: it is where answers are given; email, webhook and chat (a direct message on Slack or
#: Discord, with answer buttons) are sent as well when chosen.
Channel = Literal["page", "email", "webhook", "slack", "discord"]

Response = Literal["accepted", "declined", "snoozed", "met"]


class FeedItem(BaseModel):
    """One item of one person's feed. Its state is that person's alone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the version of this format (a record written before formats carried one reads as 1;
    #: a change a reader of the last version could not read takes the next number)
    v: Literal[1] = 1

    item_id: str
    #: "group": a group meetup to answer; "group_on": three or more of its members said yes
    type: Literal["suggestion", "mutual", "group", "group_on"]
    person_id: str
    #: the other person of a pair; of a group item, the group's id
    other_person_id: str
    suggestion_id: str
    score: float
    suggested_at: AwareDatetime
    delivered_at: AwareDatetime
    explanation: str
    evidence: dict[str, Any]
    meetup: dict[str, Any] | None = None
    read: bool = False
    response: Response | None = None
    responded_at: AwareDatetime | None = None
    snoozed_until: AwareDatetime | None = None
    met_rating: Annotated[int, Field(ge=1, le=5)] | None = None
    #: of a group item, everyone in it (sorted, the person too); of a "group_on" item, those
    #: who said yes (nobody learns who declined or has not answered)
    members: tuple[str, ...] = ()

    @property
    def is_group(self) -> bool:
        return self.type in ("group", "group_on")

    @property
    def others(self) -> tuple[str, ...]:
        """Who this item is about: the other person, or the group's other members."""
        if self.is_group:
            return tuple(m for m in self.members if m != self.person_id)
        return (self.other_person_id,)


PREFERENCES_ADAPTER: Final = TypeAdapter(Preferences)
FEED_ITEM_ADAPTER: Final = TypeAdapter(FeedItem)


def person_hash(person_id: str) -> str:
    """How the suppression list (``people.forgotten``) names a forgotten person: a hash, so
    that honouring the deletion does not keep the id itself."""
    import hashlib

    return hashlib.sha256(f"person:{person_id}".encode()).hexdigest()
