"""Phone logs: call detail records and SMS, one record or ``{"records": [...]}``.

    {"type": "call", "id": "c-1", "from": "+4512345678", "to": "+4587654321",
     "started_at": "2026-03-01T09:30:00+01:00", "duration_s": 62, "status": "answered"}
    {"type": "sms", "id": "s-1", "from": "...", "to": "...", "sent_at": "...", "text": "..."}

A call that was not answered (``missed``, ``busy``, ``rejected``, or duration 0) is a call of
duration 0: an attempt, not a conversation.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from services.sources.base import Draft, Extraction, clip, event_id

NAME: Final = "phone"
Number = Annotated[str, Field(min_length=3, max_length=32, pattern=r"^\+?[0-9A-Za-z*#:-]+$")]


class Call(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
    type: Literal["call"]
    id: Annotated[str, Field(min_length=1, max_length=128)]
    from_: Number = Field(alias="from")
    to: Number
    started_at: AwareDatetime
    duration_s: Annotated[float, Field(ge=0, le=86400 * 2)] = 0
    status: Literal["answered", "missed", "busy", "rejected", "voicemail"] = "answered"


class Sms(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
    type: Literal["sms"]
    id: Annotated[str, Field(min_length=1, max_length=128)]
    from_: Number = Field(alias="from")
    to: Number
    sent_at: AwareDatetime
    text: Annotated[str, Field(max_length=20_000)] | None = None


Record = Annotated[Call | Sms, Field(discriminator="type")]


class Batch(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    records: Annotated[list[Record], Field(max_length=5000)]


PAYLOAD: Final = TypeAdapter(Batch | Record)


def _who(number: str) -> str:
    return f"phone:{number}"


def extract(payload: Batch | Call | Sms) -> Extraction:
    records = payload.records if isinstance(payload, Batch) else [payload]
    drafts = []
    for r in records:
        actor, target = _who(r.from_), _who(r.to)
        if isinstance(r, Call):
            answered = r.status == "answered"
            drafts.append(
                Draft(
                    event_id=event_id(r.id, "call", target),
                    kind="call",
                    actor=actor,
                    target=target,
                    occurred_at=r.started_at,
                    duration_s=r.duration_s if answered else 0.0,
                )
            )
        else:
            drafts.append(
                Draft(
                    event_id=event_id(r.id, "message", target),
                    kind="message",
                    actor=actor,
                    target=target,
                    occurred_at=r.sent_at,
                    text=clip(r.text),
                )
            )
    return Extraction(drafts=drafts)
