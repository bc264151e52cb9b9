"""Mastodon: status entities, v1 notifications (mention, favourite, reblog), v2 grouped
notifications and thread contexts (``{"ancestors": [...], "descendants": [...]}``).

People are ``mastodon:@user@host``; a local ``acct`` without a host takes the host of the
account's profile URL. A reply's counterpart is found among the status's mentions, else in
the directory of accounts seen before (``account:<host>:<id>``).
"""

from __future__ import annotations

from typing import Annotated, Any, Final
from urllib.parse import urlparse

from pydantic import (
    AwareDatetime,
    BaseModel,
    Discriminator,
    Field,
    OnErrorOmit,
    Tag,
    TypeAdapter,
    model_validator,
)

from services.sources.base import (
    PLATFORM,
    Draft,
    Extraction,
    Ignored,
    Kind,
    PlatformTime,
    Tolerant,
    TolerantFlag,
    TolerantList,
    event_id,
    finish,
    html_to_text,
    unique,
)

NAME: Final = "mastodon"
_CFG = PLATFORM
#: the notification types read; every other (follow, poll, admin.report, types a server adds)
#: is acknowledged and ignored, whatever fields it carries
READ_NOTIFICATIONS: Final = frozenset({"mention", "quote", "favourite", "reblog"})
Id = Annotated[str, Field(min_length=1, max_length=64)]


class Account(BaseModel):
    model_config = _CFG
    id: Id
    acct: Annotated[str, Field(min_length=1, max_length=512)]
    url: Annotated[str | None, Tolerant] = None
    bot: Annotated[bool, TolerantFlag] = False
    display_name: Annotated[str | None, Tolerant] = None
    followers_count: Annotated[Annotated[int, Field(ge=0)] | None, Tolerant] = None


class Mention(BaseModel):
    model_config = _CFG
    id: Id
    acct: Annotated[str, Field(min_length=1, max_length=512)]
    url: Annotated[str | None, Tolerant] = None


class Status(BaseModel):
    model_config = _CFG
    id: Id
    created_at: PlatformTime
    account: Account
    in_reply_to_id: Id | None = None
    in_reply_to_account_id: Id | None = None
    visibility: Annotated[str, Field(max_length=64)] = "public"
    content: str | None = None
    mentions: Annotated[list[OnErrorOmit[Mention]], TolerantList] = []
    reblog: Status | None = None
    #: Mastodon 4.4+: the quoted post (``state`` accepted) of a quote post
    quote: Annotated[Quote | None, Tolerant] = None


class Quote(BaseModel):
    model_config = _CFG
    state: Annotated[str, Field(max_length=64)] = "accepted"
    quoted_status: Status | None = None

    @model_validator(mode="before")
    @classmethod
    def _older_shape(cls, data: Any) -> Any:
        """Forks that quoted before Mastodon 4.4 (Fedibird, glitch-soc) put the quoted
        status itself in ``quote``."""
        if isinstance(data, dict) and "account" in data and "quoted_status" not in data:
            return {"state": "accepted", "quoted_status": data}
        return data


class Notification(BaseModel):
    model_config = _CFG
    id: Id
    type: Annotated[str, Field(max_length=64)]
    created_at: PlatformTime
    #: absent from some types (severed_relationships, moderation_warning)
    account: Account | None = None
    status: Status | None = None


class Group(BaseModel):
    model_config = _CFG
    group_key: Annotated[str, Field(max_length=256)]
    type: Annotated[str, Field(max_length=64)]
    sample_account_ids: list[Id] = []
    status_id: Id | None = None
    latest_page_notification_at: AwareDatetime | None = None


class GroupedNotifications(BaseModel):
    model_config = _CFG
    accounts: list[Account] = []
    #: ``?expand_accounts=partial_avatars``: the sampled accounts that are not in ``accounts``
    partial_accounts: list[Account] = []
    statuses: list[Status] = []
    notification_groups: list[Group]


class Context(BaseModel):
    model_config = _CFG
    ancestors: list[Status]
    descendants: list[Status]


class OtherNotification(Ignored):
    pass


def _shape(v: Any) -> str:
    if isinstance(v, list):
        return "statuses"
    if isinstance(v, dict):
        if "notification_groups" in v:
            return "grouped"
        if "ancestors" in v or "descendants" in v:
            return "context"
        if "type" in v and "content" not in v:
            read = isinstance(v["type"], str) and v["type"] in READ_NOTIFICATIONS
            return "notification" if read else "ignored"
    return "status"


Payload = Annotated[
    Annotated[Status, Tag("status")]
    | Annotated[list[Status], Tag("statuses")]
    | Annotated[Notification, Tag("notification")]
    | Annotated[GroupedNotifications, Tag("grouped")]
    | Annotated[Context, Tag("context")]
    | Annotated[OtherNotification, Tag("ignored")],
    Discriminator(_shape),
]
PAYLOAD: Final = TypeAdapter(Payload)


def _host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlparse(url).netloc or None
    except ValueError:  # e.g. an unbalanced "[" (found by the fuzzer): no usable host
        return None


def handle(acct: str, url: str | None) -> str:
    """``mastodon:@user@host``, lower case: Mastodon matches usernames and domains without
    regard to case (the one rule for handles: names people type are case-folded, ids a
    platform issues are kept as issued)."""
    acct = acct.lstrip("@")
    if "@" not in acct and (host := _host(url)):
        acct = f"{acct}@{host}"
    return f"mastodon:@{acct.lower()}"


def _ref(account_id: str, origin: str | None) -> str | None:
    """The directory key of an account id. Ids belong to the server that answered (the same
    person has another id on every server), so the key names that server; without it there
    is no key that could not mean someone else."""
    return f"account:{origin}:{account_id}" if origin else None


def origin_of(payload: Any, told: str | None) -> str | None:
    """The server that answered: as the sender said (``X-Realconnect-Origin``), else the host
    of an account local to it (an ``acct`` without ``@host``)."""
    if told:
        return told.lower()
    stack = [payload]
    while stack:
        v = stack.pop()
        if isinstance(v, Account | Mention) and "@" not in v.acct.lstrip("@"):
            return (_host(v.url) or "").lower() or None
        if isinstance(v, BaseModel):
            stack.extend(getattr(v, f) for f in type(v).model_fields)
        elif isinstance(v, list):
            stack.extend(v)
    return None


class _Reader:
    def __init__(self, origin: str | None) -> None:
        self.drafts: list[Draft] = []
        self.learned: dict[str, str] = {}
        self.bots: set[str] = set()  # accounts flagged ``bot``
        self.names: dict[str, str] = {}  # handle -> the account's display name
        self.origin = origin

    def learn(self, account_id: str, acct: str, url: str | None, bot: bool = False) -> str:
        h = handle(acct, url)
        key = _ref(account_id, self.origin)
        if key:
            self.learned[key] = h
        if bot:
            self.bots.add(h)
        return h

    def account(self, a: Account) -> str:
        h = self.learn(a.id, a.acct, a.url, a.bot)
        if a.display_name and a.display_name.strip():
            self.names[h] = a.display_name.strip()
        return h

    def status(self, s: Status) -> None:
        author = self.account(s.account)
        if s.reblog is not None:
            self.status(s.reblog)
            original = self.account(s.reblog.account)
            if original != author:
                self.drafts.append(
                    Draft(
                        event_id=event_id(f"mastodon:{s.id}", "share", original),
                        kind="share",
                        actor=author,
                        target=original,
                        occurred_at=s.created_at,
                        in_reply_to=f"mastodon:{s.reblog.id}",
                    )
                )
            return
        by_id = {m.id: self.learn(m.id, m.acct, m.url) for m in s.mentions}
        text = html_to_text(s.content)
        direct = s.visibility == "direct"
        common = {
            "actor": author,
            "occurred_at": s.created_at,
            "text": text,
            "in_reply_to": f"mastodon:{s.in_reply_to_id}" if s.in_reply_to_id else None,
            "audience": s.account.followers_count,
            "actor_bot": s.account.bot,
        }

        replied: str | None = None
        if s.in_reply_to_account_id and s.in_reply_to_account_id != s.account.id:
            kind: Kind = "message" if direct else "reply"
            replied = by_id.get(s.in_reply_to_account_id)
            ref = None if replied else _ref(s.in_reply_to_account_id, self.origin) or "account:?"
            self.drafts.append(
                Draft(
                    event_id=event_id(f"mastodon:{s.id}", kind, replied or ref or ""),
                    kind=kind,
                    target=replied,
                    target_ref=ref,
                    **common,  # type: ignore[arg-type]
                )
            )
        for target in unique(list(by_id.values())):
            if target in (author, replied):
                continue
            mkind: Kind = "message" if direct else "mention"
            self.drafts.append(
                Draft(
                    event_id=event_id(f"mastodon:{s.id}", mkind, target),
                    kind=mkind,
                    target=target,
                    **common,  # type: ignore[arg-type]
                )
            )

        quoted = s.quote.quoted_status if s.quote and s.quote.state == "accepted" else None
        if quoted is not None:
            self.status(quoted)  # teaches the directory its author
            original = handle(quoted.account.acct, quoted.account.url)
            if original not in (author, replied, *by_id.values()):
                self.drafts.append(
                    Draft(
                        event_id=event_id(f"mastodon:{s.id}", "share", original),
                        kind="share",
                        target=original,
                        **{**common, "in_reply_to": f"mastodon:{quoted.id}"},  # type: ignore[arg-type]
                    )
                )

    def reaction(self, native: str, kind: str, who: Account, status: Status, at: Any) -> None:
        actor = self.account(who)
        owner = self.account(status.account)
        if actor != owner:
            self.drafts.append(
                Draft(
                    event_id=event_id(native, kind, owner),
                    kind=kind,  # type: ignore[arg-type]
                    actor=actor,
                    target=owner,
                    occurred_at=at,
                    in_reply_to=f"mastodon:{status.id}",
                    actor_bot=who.bot,
                )
            )


_REACTIONS: Final = {"favourite": "like", "reblog": "share"}


def extract(
    payload: Status | list[Status] | Notification | GroupedNotifications | Context,
    origin: str | None = None,
) -> Extraction:
    r = _Reader(origin_of(payload, origin))
    if isinstance(payload, Status):
        r.status(payload)
    elif isinstance(payload, list):
        for s in payload:
            r.status(s)
    elif isinstance(payload, Context):
        for s in [*payload.ancestors, *payload.descendants]:
            r.status(s)
    elif isinstance(payload, Notification):
        if payload.status is None or payload.account is None:
            return Extraction(learned=r.learned, ignored=f"notification type {payload.type}")
        if payload.type in ("mention", "quote"):  # the status mentions or quotes the account
            r.status(payload.status)
        else:
            r.reaction(
                f"mastodon:n:{payload.id}",
                _REACTIONS[payload.type],
                payload.account,
                payload.status,
                payload.created_at,
            )
    else:
        everyone = [*payload.accounts, *payload.partial_accounts]
        accounts = {a.id: a for a in everyone}
        statuses = {s.id: s for s in payload.statuses}
        for a in everyone:
            r.account(a)
        for g in payload.notification_groups:
            status = statuses.get(g.status_id or "")
            if status is None:
                continue
            if g.type in ("mention", "quote"):
                r.status(status)
            elif g.type in _REACTIONS:
                for aid in g.sample_account_ids:
                    if aid in accounts:
                        r.reaction(
                            f"mastodon:g:{g.group_key}:{aid}",
                            _REACTIONS[g.type],
                            accounts[aid],
                            status,
                            g.latest_page_notification_at or status.created_at,
                        )
    return finish(r.drafts, r.learned, bots=tuple(sorted(r.bots)), names=r.names)
