"""A meetup suggestion, as written to ``meetup.suggestions`` and printed by the CLI.

Wire format::

    {"suggestion_id": str, "pair": [a, b] (sorted), "score": number, "suggested_at": ISO-8601,
     "evidence": {...}, "explanation": str}
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator


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

    @field_validator("pair")
    @classmethod
    def _sorted(cls, v: tuple[str, str]) -> tuple[str, str]:
        if v[0] >= v[1]:
            raise ValueError("pair must be two distinct ids in sorted order")
        return v


SUGGESTION_ADAPTER: Final = TypeAdapter(Suggestion)
