"""The canonical format itself, as a source: one interaction or a JSON array of them."""

from __future__ import annotations

from typing import Final

from pydantic import TypeAdapter

from schemas.events import Interaction
from services.sources.base import Draft, Extraction

NAME: Final = "generic"
PAYLOAD: Final = TypeAdapter(Interaction | list[Interaction])


def extract(payload: Interaction | list[Interaction]) -> Extraction:
    items = payload if isinstance(payload, list) else [payload]
    return Extraction(
        drafts=[
            Draft(
                event_id=i.event_id,
                kind=i.kind,
                actor=i.actor,
                target=i.target,
                occurred_at=i.occurred_at,
                text=i.text,
                duration_s=i.duration_s,
                thread_id=i.thread_id,
                in_reply_to=i.in_reply_to,
            )
            for i in items
        ]
    )
