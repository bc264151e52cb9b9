"""Bluesky (AT Protocol) Jetstream commit events: posts (replies, mention facets), likes,
reposts. People are ``bluesky:<did>``; a post or like names its counterpart by the DID in an
``at://<did>/<collection>/<rkey>`` URI, so no lookup is needed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    OnErrorOmit,
    TypeAdapter,
    model_validator,
)

from services.sources.base import (
    PLATFORM,
    Draft,
    EpochMicros,
    Extraction,
    Tolerant,
    TolerantList,
    clip,
    event_id,
    from_epoch,
    unique,
)

NAME: Final = "bluesky"
#: the collections read; every other record (follows, blocks, list items, profiles,
#: threadgates...) is acknowledged and ignored without validating its shape
READ: Final = frozenset({"app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.feed.repost"})


def _lenient_time(v: Any) -> datetime | None:
    """``createdAt`` as the record wrote it: the lexicon asks for a timezone, yet real
    records carry naive times (read as UTC) and worse (then the event's ``time_us``)."""
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    if not isinstance(v, str):
        return None
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


CreatedAt = Annotated[datetime | None, BeforeValidator(_lenient_time)]
_CFG = ConfigDict(**PLATFORM, populate_by_name=True)
Did = Annotated[str, Field(pattern=r"^did:[a-z]+:[A-Za-z0-9._:%-]{1,2048}$")]
AtUri = Annotated[str, Field(pattern=r"^at://[^/]+(/.*)?$", max_length=8192)]


class StrongRef(BaseModel):
    model_config = _CFG
    uri: AtUri
    cid: str | None = None


class ReplyRef(BaseModel):
    model_config = _CFG
    parent: StrongRef
    #: the thread's first post; a record without it is still a reply to ``parent``
    root: Annotated[StrongRef | None, Tolerant] = None


class Feature(BaseModel):
    model_config = _CFG
    type_: str = Field(alias="$type")
    did: str | None = None


class Facet(BaseModel):
    model_config = _CFG
    features: list[Feature] = []


class EmbeddedRecord(BaseModel):
    model_config = _CFG
    uri: AtUri | None = None
    record: StrongRef | None = None  # app.bsky.embed.recordWithMedia#record wraps one more


class Embed(BaseModel):
    """A quote post: ``app.bsky.embed.record`` (``record.uri``) or
    ``app.bsky.embed.recordWithMedia`` (``record.record.uri``)."""

    model_config = _CFG
    type_: str | None = Field(default=None, alias="$type")
    record: EmbeddedRecord | None = None

    def quoted(self) -> str | None:
        if self.record is None:
            return None
        if self.type_ == "app.bsky.embed.record":
            return self.record.uri
        if self.type_ == "app.bsky.embed.recordWithMedia" and self.record.record:
            return self.record.record.uri
        return None


class Record(BaseModel):
    model_config = _CFG
    type_: str | None = Field(default=None, alias="$type")
    createdAt: CreatedAt = None
    text: Annotated[str, Field(max_length=100_000)] | None = None
    reply: ReplyRef | None = None
    facets: Annotated[list[OnErrorOmit[Facet]], TolerantList] = []
    subject: StrongRef | None = None
    embed: Annotated[Embed | None, Tolerant] = None


class Commit(BaseModel):
    model_config = _CFG
    rev: str | None = None
    operation: Literal["create", "update", "delete"]
    collection: Annotated[str, Field(max_length=256)]
    rkey: Annotated[str, Field(min_length=1, max_length=512)]
    record: Record | None = None
    cid: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _only_read_records(cls, data: Any) -> Any:
        if isinstance(data, dict) and "record" in data:
            col = data.get("collection")
            if not (isinstance(col, str) and col in READ):
                return {**data, "record": None}
        return data


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
    if c.collection not in READ:
        return Extraction(ignored=f"collection {c.collection} (not read)")
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
        thread = rec.reply.root.uri if rec.reply and rec.reply.root else None
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
        quoted = rec.embed.quoted() if rec.embed else None
        if quoted and _did_of(quoted) not in (replied, *mentioned):
            # a quote post shares the quoted author's post (with words of one's own)
            add("share", _did_of(quoted), text=text, in_reply_to=quoted)
    else:
        return Extraction(ignored=f"collection {c.collection}")
    if not drafts:
        return Extraction(ignored="no interaction between two people")
    return Extraction(drafts=drafts)
