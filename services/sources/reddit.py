"""Reddit API objects: comments (``t1``), private messages (``t4``), listings of them, whole
threads (``GET /comments/{id}``: a list of two listings with nested ``replies``), inbox items
and ``POST /api/comment`` responses.

A comment's counterpart is the author of its ``parent_id``: found in the same payload when
the thread is there, else in the directory of things seen before (``thing:<fullname>``).
Inbox items name the recipient in ``dest``. People are ``reddit:u/<name>`` (lower case:
Reddit names are case-insensitive). Deleted authors are skipped.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from pydantic import BaseModel, Field, OnErrorOmit, TypeAdapter, ValidationError

from services.sources.base import (
    GONE,
    PLATFORM,
    Draft,
    EpochSeconds,
    Extraction,
    clip,
    event_id,
    from_epoch,
)

NAME: Final = "reddit"
_CFG = PLATFORM
Name = Annotated[str, Field(max_length=128)]


class ThingData(BaseModel):
    model_config = _CFG
    id: Annotated[str, Field(max_length=64)] | None = None
    name: Name | None = None
    author: Name | None = None
    parent_id: Name | None = None
    link_id: Name | None = None
    #: the post's author, which Reddit puts on comments listed outside their thread
    #: (``/r/{sub}/comments``, a user's comments)
    link_author: Name | None = None
    body: Annotated[str, Field(max_length=100_000)] | None = None
    created_utc: EpochSeconds | None = None
    dest: Name | None = None
    type: Name | None = None
    replies: Any = None  # "" or a Listing


class Thing(BaseModel):
    model_config = _CFG
    kind: Annotated[str, Field(max_length=16)]
    data: ThingData | dict[str, Any]


class ListingData(BaseModel):
    model_config = _CFG
    #: a child that is not a thing (a shape Reddit added) is left unread
    children: list[OnErrorOmit[Thing]]


class Listing(BaseModel):
    model_config = _CFG
    kind: Annotated[str, Field(pattern="^Listing$")]
    data: ListingData


class ApiData(BaseModel):
    model_config = _CFG
    things: list[Thing] = []


class ApiJson(BaseModel):
    model_config = _CFG
    errors: list[Any] = []
    data: ApiData | None = None


class ApiResponse(BaseModel):
    model_config = _CFG
    json_: ApiJson = Field(alias="json")


Payload = list[Listing] | Listing | ApiResponse | Thing
PAYLOAD: Final = TypeAdapter(Payload)
_LISTING: Final = TypeAdapter(Listing)


def _who(name: str) -> str:
    return f"reddit:u/{name.lower()}"


def _real(author: str | None) -> bool:
    return bool(author) and author not in ("[deleted]", "[removed]")


def _things(payload: Payload) -> list[Thing]:
    if isinstance(payload, list):
        roots = [t for listing in payload for t in listing.data.children]
    elif isinstance(payload, Listing):
        roots = list(payload.data.children)
    elif isinstance(payload, ApiResponse):
        roots = list(payload.json_.data.things) if payload.json_.data else []
    else:
        roots = [payload]
    out: list[Thing] = []
    stack = list(reversed(roots))
    while stack:
        t = stack.pop()
        out.append(t)
        if isinstance(t.data, ThingData) and isinstance(t.data.replies, dict):
            try:
                stack.extend(reversed(_LISTING.validate_python(t.data.replies).data.children))
            except ValidationError:
                continue  # a malformed replies field: the comment itself still counts
    return out


#: ``/u/name`` or ``u/name`` in a comment's text notifies that user (Reddit usernames:
#: 3-20 letters, digits, ``_`` and ``-``)
_MENTION = re.compile(r"(?<![\w/])/?u/([A-Za-z0-9_-]{3,20})\b")


def extract(payload: Payload) -> Extraction:
    things = [t for t in _things(payload) if isinstance(t.data, ThingData)]
    learned = {
        f"thing:{t.data.name}": _who(t.data.author)  # type: ignore[union-attr]
        if _real(t.data.author)  # type: ignore[union-attr]
        else GONE  # a deleted or removed author: replies to it are skipped, not dead-lettered
        for t in things
        if t.kind in ("t1", "t3", "t4") and t.data.name and t.data.author  # type: ignore[union-attr]
    }
    drafts: list[Draft] = []
    for t in things:
        d: ThingData = t.data  # type: ignore[assignment]
        if t.kind not in ("t1", "t4") or not _real(d.author) or d.created_utc is None or not d.name:
            continue
        actor = _who(d.author)  # type: ignore[arg-type]
        at = from_epoch(d.created_utc)
        if t.kind == "t4":
            if not d.dest or d.dest.startswith("#"):
                continue  # modmail to a subreddit is not a person
            target: str | None = _who(d.dest)
            ref = None
            kind = "message"
        else:
            parent = d.parent_id or ""
            kind = "reply" if parent.startswith("t1_") else "comment"
            if d.dest and d.type == "username_mention":
                kind, target = "mention", _who(d.dest)  # an inbox item: the owner was named
            elif d.dest and d.type in ("comment_reply", "post_reply"):
                target = _who(d.dest)  # an inbox item: the inbox owner is who was answered
            else:
                target = learned.get(f"thing:{parent}")
                if target is None and parent == d.link_id and _real(d.link_author):
                    target = _who(d.link_author)  # type: ignore[arg-type]
            ref = None if target else f"thing:{parent}"
        if target == GONE:
            continue  # under a deleted or removed parent: nobody to answer
        named = [_who(n) for n in _MENTION.findall(d.body or "")] if t.kind == "t1" else []
        for person in dict.fromkeys(named):
            if person not in (actor, target):
                drafts.append(
                    Draft(
                        event_id=event_id(f"reddit:{d.name}", "mention", person),
                        kind="mention",
                        actor=actor,
                        target=person,
                        occurred_at=at,
                        text=clip(d.body),
                        thread_id=f"reddit:{d.link_id}" if d.link_id else None,
                    )
                )
        if target == actor or (kind == "mention" and target in named):
            continue
        drafts.append(
            Draft(
                event_id=event_id(f"reddit:{d.name}", kind, target or ref or ""),
                kind=kind,  # type: ignore[arg-type]
                actor=actor,
                target=target,
                target_ref=ref,
                occurred_at=at,
                text=clip(d.body),
                thread_id=f"reddit:{d.link_id}" if d.link_id else None,
                in_reply_to=f"reddit:{d.parent_id}" if d.parent_id else None,
            )
        )
    if not drafts:
        return Extraction(learned=learned, ignored="no interaction between two people")
    return Extraction(drafts=drafts, learned=learned)
