"""An answer to a suggestion, on ``meetup.feedback`` (keyed by pair)."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

Outcome = Literal["accepted", "declined", "snoozed", "met"]


class FeedbackGiven(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    suggestion_id: str = Field(min_length=1, max_length=128)
    pair: tuple[str, str]
    person_id: str = Field(min_length=1, max_length=256)
    outcome: Outcome
    at: AwareDatetime


FEEDBACK_ADAPTER: Final = TypeAdapter(FeedbackGiven)
