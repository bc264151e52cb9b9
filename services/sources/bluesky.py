"""Bluesky (AT Protocol) Jetstream commit events: posts (replies, mention facets), likes,
reposts. People are ``bluesky:<did>``; a post or like names its counterpart by the DID in an
``at://<did>/<collection>/<rkey>`` URI, so no lookup is needed."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from services.sources.base import (
    Draft,
    EpochMicros,
    Extraction,
    clip,
    event_id,
    from_epoch,
    unique,
)

NAME: Final = "bluesky"
_CFG = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
Did = Annotated[str, Field(pattern=r"^did:[a-z]+:[A-Za-z0-9._:%-]{1,2048}$")]
AtUri = Annotated[str, Field(pattern=r"^at://[^/]+(/.*)?$", max_length=8192)]


class StrongRef(BaseModel):
    model_config = _CFG
    uri: AtUri
    cid: str | None = None


class ReplyRef(BaseModel):
    model_config = _CFG
    parent: StrongRef
    root: StrongRef


class Feature(BaseModel):
    model_config = _CFG
    type_: str = Field(alias="$type")
    did: str | None = None


class Facet(BaseModel):
    model_config = _CFG
    features: list[Feature] = []


class Record(BaseModel):
    model_config = _CFG
    type_: str | None = Field(default=None, alias="$type")
    createdAt: AwareDatetime | None = None
    text: Annotated[str, Field(max_length=100_000)] | None = None
    reply: ReplyRef | None = None
    facets: list[Facet] = []
    subject: StrongRef | None = None


class Commit(BaseModel):
    model_config = _CFG
    rev: str | None = None
    operation: Literal["create", "update", "delete"]
    collection: Annotated[str, Field(max_length=256)]
    rkey: Annotated[str, Field(min_length=1, max_length=512)]
    record: Record | None = None
    cid: str | None = None


class Event(BaseModel):
    model_config = _CFG
    did: Did
    time_us: EpochMicros
    kind: Annotated[str, Field(max_length=64)]
    commit: Commit | None = None


PAYLOAD: Final = TypeAdapter(Event)


def _did_of(uri: str) -> str:
    return uri.removeprefix("at://").split("/", 1)[0]


def _who(did: str) -> str:
    return f"bluesky:{did}"


def extract(e: Event) -> Extraction:
    c = e.commit
    if e.kind != "commit" or c is None:
        return Extraction(ignored=f"{e.kind} event")
    if c.operation != "create" or c.record is None:
        return Extraction(ignored=f"{c.operation} of {c.collection}")
    rec = c.record
    actor = _who(e.did)
    native = f"at://{e.did}/{c.collection}/{c.rkey}"
    at = rec.createdAt or from_epoch(e.time_us / 1e6)
    drafts: list[Draft] = []

    def add(kind: str, target_did: str, **extra: Any) -> None:
        target = _who(target_did)
        if target != actor:
            drafts.append(
                Draft(
                    event_id=event_id(native, kind, target),
                    kind=kind,  # type: ignore[arg-type]
                    actor=actor,
                    target=target,
                    occurred_at=at,
                    **extra,
                )
            )

    if c.collection == "app.bsky.feed.like" and rec.subject:
        add("like", _did_of(rec.subject.uri), in_reply_to=rec.subject.uri)
    elif c.collection == "app.bsky.feed.repost" and rec.subject:
        add("share", _did_of(rec.subject.uri), in_reply_to=rec.subject.uri)
    elif c.collection == "app.bsky.feed.post":
        text = clip(rec.text)
        thread = rec.reply.root.uri if rec.reply else None
        replied = _did_of(rec.reply.parent.uri) if rec.reply else None
        if replied:
            add("reply", replied, text=text, thread_id=thread, in_reply_to=rec.reply.parent.uri)  # type: ignore[union-attr]
        mentioned = unique(
            [
                f.did
                for facet in rec.facets
                for f in facet.features
                if f.type_ == "app.bsky.richtext.facet#mention" and f.did
            ]
        )
        for did in mentioned:
            if did != replied:
                add("mention", did, text=text, thread_id=thread)
    else:
        return Extraction(ignored=f"collection {c.collection}")
    if not drafts:
        return Extraction(ignored="no interaction between two people")
    return Extraction(drafts=drafts)
