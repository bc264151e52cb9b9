"""An answer to a suggestion, on ``meetup.feedback`` (keyed by pair).

A group meetup that is on (three or more members said yes) is an answer for each pair of
the members who said yes: one record per member and pair, with ``group_id`` set and
``suggestion_id`` the group's id. It teaches the matcher (a labelled example of that pair);
it does not touch the pair's own suggestions, cooldowns or outcome."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

#: ``undelivered``: not an answer of a person but the notifier's, when it could not deliver
#: the suggestion because one of the two has not opted in; the matcher then holds the pair
#: back a short while (``MATCHER__UNDELIVERED_RETRY_DAYS``) instead of the whole cooldown,
#: so two people who opt in a day later are not kept waiting a month (issue 39)
Outcome = Literal["accepted", "declined", "snoozed", "met", "undelivered"]


class FeedbackGiven(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the version of this format (a record written before formats carried one reads as 1;
    #: a change a reader of the last version could not read takes the next number)
    v: Literal[1] = 1

    suggestion_id: str = Field(min_length=1, max_length=128)
    pair: tuple[str, str]
    person_id: str = Field(min_length=1, max_length=256)
    outcome: Outcome
    at: AwareDatetime
    #: set when the answer is a group's (``suggestion_id`` is then the group's id)
    group_id: str | None = Field(default=None, min_length=1, max_length=128)


FEEDBACK_ADAPTER: Final = TypeAdapter(FeedbackGiven)
