"""Feed items from a suggestion (pure: no I/O imports).

Each person of the pair gets one item naming the other person. The item id is the
suggestion id, which is deterministic, so writing the same suggestion twice is a no-op.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from schemas.suggestions import Suggestion


class FeedItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    item_id: str
    type: Literal["suggestion"] = "suggestion"
    person_id: str
    other_person_id: str
    suggestion_id: str
    score: float
    suggested_at: AwareDatetime
    explanation: str
    evidence: dict[str, Any]


def items_for(suggestion: Suggestion) -> tuple[FeedItem, FeedItem]:
    """One item for each person of the pair."""
    a, b = suggestion.pair
    return (_item(suggestion, a, b), _item(suggestion, b, a))


def _item(s: Suggestion, person: str, other: str) -> FeedItem:
    return FeedItem(
        item_id=s.suggestion_id,
        person_id=person,
        other_person_id=other,
        suggestion_id=s.suggestion_id,
        score=s.score,
        suggested_at=s.suggested_at,
        explanation=s.explanation,
        evidence=s.evidence,
    )
