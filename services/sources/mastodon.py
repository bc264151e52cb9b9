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
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
)

from services.sources.base import Draft, Extraction, Kind, event_id, html_to_text, unique

NAME: Final = "mastodon"
_CFG = ConfigDict(frozen=True, extra="ignore")
Id = Annotated[str, Field(min_length=1, max_length=64)]


class Account(BaseModel):
    model_config = _CFG
    id: Id
    acct: Annotated[str, Field(min_length=1, max_length=512)]
    url: str | None = None
    bot: bool = False
    followers_count: Annotated[int, Field(ge=0)] | None = None


class Mention(BaseModel):
    model_config = _CFG
    id: Id
    acct: Annotated[str, Field(min_length=1, max_length=512)]
    url: str | None = None


class Status(BaseModel):
    model_config = _CFG
    id: Id
    created_at: AwareDatetime
    account: Account
    in_reply_to_id: Id | None = None
    in_reply_to_account_id: Id | None = None
    visibility: str = "public"
    content: str | None = None
    mentions: list[Mention] = []
    reblog: Status | None = None


class Notification(BaseModel):
    model_config = _CFG
    id: Id
    type: Annotated[str, Field(max_length=64)]
    created_at: AwareDatetime
    account: Account
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
    statuses: list[Status] = []
    notification_groups: list[Group]


class Context(BaseModel):
    model_config = _CFG
    ancestors: list[Status]
    descendants: list[Status]


def _shape(v: Any) -> str:
    if isinstance(v, list):
        return "statuses"
    if isinstance(v, dict):
        if "notification_groups" in v:
            return "grouped"
        if "ancestors" in v or "descendants" in v:
            return "context"
        if "type" in v and "content" not in v:
            return "notification"
    return "status"


Payload = Annotated[
    Annotated[Status, Tag("status")]
    | Annotated[list[Status], Tag("statuses")]
    | Annotated[Notification, Tag("notification")]
    | Annotated[GroupedNotifications, Tag("grouped")]
    | Annotated[Context, Tag("context")],
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
    acct = acct.lstrip("@")
    if "@" not in acct and (host := _host(url)):
        acct = f"{acct}@{host}"
    return f"mastodon:@{acct}"


def _ref(account_id: str, host: str | None) -> str:
    return f"account:{host or '?'}:{account_id}"


class _Reader:
    def __init__(self) -> None:
        self.drafts: list[Draft] = []
        self.learned: dict[str, str] = {}

    def learn(self, account_id: str, acct: str, url: str | None) -> str:
        h = handle(acct, url)
        self.learned[_ref(account_id, _host(url))] = h
        return h

    def status(self, s: Status) -> None:
        author = self.learn(s.account.id, s.account.acct, s.account.url)
        host = _host(s.account.url)
        if s.reblog is not None:
            self.status(s.reblog)
            original = self.learn(s.reblog.account.id, s.reblog.account.acct, s.reblog.account.url)
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
            ref = None if replied else _ref(s.in_reply_to_account_id, host)
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

    def reaction(self, native: str, kind: str, who: Account, status: Status, at: Any) -> None:
        actor = self.learn(who.id, who.acct, who.url)
        owner = self.learn(status.account.id, status.account.acct, status.account.url)
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
) -> Extraction:
    r = _Reader()
    if isinstance(payload, Status):
        r.status(payload)
    elif isinstance(payload, list):
        for s in payload:
            r.status(s)
    elif isinstance(payload, Context):
        for s in [*payload.ancestors, *payload.descendants]:
            r.status(s)
    elif isinstance(payload, Notification):
        if payload.status is None or payload.type not in ("mention", *_REACTIONS):
            return Extraction(learned=r.learned, ignored=f"notification type {payload.type}")
        if payload.type == "mention":
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
        accounts = {a.id: a for a in payload.accounts}
        statuses = {s.id: s for s in payload.statuses}
        for a in payload.accounts:
            r.learn(a.id, a.acct, a.url)
        for g in payload.notification_groups:
            status = statuses.get(g.status_id or "")
            if status is None:
                continue
            if g.type == "mention":
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
    if not r.drafts:
        return Extraction(learned=r.learned, ignored="no interaction between two people")
    return Extraction(drafts=r.drafts, learned=r.learned)
