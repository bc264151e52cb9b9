"""What an answer to a suggestion does to its pair (pure: no I/O imports).

An answer on ``meetup.feedback`` updates the pair state (cooldowns, the outcome), may become a
labelled example for learning, and may count towards the per-signal label counters that
operators read to judge the explanation signals.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.feedback import FeedbackGiven
from schemas.people import person_hash
from services.matcher import learning
from services.matcher import pairs as logic


@dataclass(frozen=True)
class Answered:
    #: the pair state with the answer recorded
    after: logic.PairState
    #: the labelled example the answer makes, if any (the person as a hash: no id is kept)
    example: learning.Example | None
    #: whether the outcome counts for the signals of the pair's suggestion
    counted: bool


def answer(before: logic.PairState, fb: FeedbackGiven) -> Answered:
    """The effects of ``fb`` on the pair whose state is ``before``.

    Only an answer to the pair's latest suggestion teaches or counts: an answer to an older
    one still sets the outcome (``pairs.record_outcome``) but its features are not the ones
    stored. A "met" counts once both people said so."""
    at = fb.at.timestamp()
    after = logic.record_outcome(before, fb.outcome, at, fb.person_id)
    current = fb.suggestion_id == before.suggestion_id
    label = learning.label_of(fb.outcome)
    example = None
    if label is not None and current and before.x:
        example = learning.Example(
            suggestion_id=fb.suggestion_id,
            person=person_hash(fb.person_id),
            x=before.x,
            label=label,
            at=at,
        )
    counted = fb.outcome == "accepted" or (fb.outcome == "met" and after.outcome == "met")
    return Answered(after=after, example=example, counted=counted and current)
