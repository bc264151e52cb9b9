"""A meetup suggestion, as written to ``meetup.suggestions`` and printed by the CLI.

Wire format::

    {"suggestion_id": str, "pair": [a, b] (sorted), "score": number, "suggested_at": ISO-8601,
     "evidence": {...}, "explanation": str, "around": {...} or null}
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator


class Around(BaseModel):
    """The people around the pair when it was suggested: the structural features of their two
    circles (services/matcher/circles.py, docs/matching.md). Context, not evidence: it does
    not decide, and it reflects the circles as far as the circle stage had folded them then,
    so a replay of the same events may give other figures (the decision stays the same)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shared_contacts: int = Field(ge=0)
    adamic_adar: float = Field(ge=0)
    attention: float = Field(ge=0, le=1)
    closest: float = Field(ge=0, le=1)
    #: where each ranks in the other's circle (1: closest; None: not in it), a's rank of b first
    rank: tuple[int | None, int | None]


class Suggestion(BaseModel):
    """The matcher's decision that two people should meet, with the evidence behind it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    suggestion_id: str = Field(min_length=1)
    pair: tuple[str, str]
    score: float
    #: Event time of the interaction that triggered the suggestion, never the wall clock.
    suggested_at: AwareDatetime
    evidence: dict[str, Any]
    explanation: str
    around: Around | None = None

    @field_validator("pair")
    @classmethod
    def _sorted(cls, v: tuple[str, str]) -> tuple[str, str]:
        if v[0] >= v[1]:
            raise ValueError("pair must be two distinct ids in sorted order")
        return v


SUGGESTION_ADAPTER: Final = TypeAdapter(Suggestion)
