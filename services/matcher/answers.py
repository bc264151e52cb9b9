"""What an answer to a suggestion does to its pair (pure: no I/O imports).

An answer on ``meetup.feedback`` updates the pair state (cooldowns, the outcome), may become a
labelled example for learning, and may count towards the per-signal label counters that
operators read to judge the explanation signals.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from schemas.feedback import FeedbackGiven
from schemas.people import person_hash
from services.matcher import learning
from services.matcher import pairs as logic
from services.matcher.model import vector


@dataclass(frozen=True)
class Answered:
    #: the pair state with the answer recorded
    after: logic.PairState
    #: the labelled example the answer makes, if any (the person as a hash: no id is kept)
    example: learning.Example | None
    #: whether the outcome counts for the signals of the pair's suggestion
    counted: bool


def answer(
    before: logic.PairState, fb: FeedbackGiven, policy: logic.Policy | None = None
) -> Answered:
    """The effects of ``fb`` on the pair whose state is ``before``.

    A group's answer (``fb.group_id``) is a labelled example of the pair, with the pair's
    features as of its latest exchange (``policy``'s model; the pair was not suggested on
    its own, so none were stored): it leaves the pair state as it is and counts for no signal.

    Only an answer to the pair's latest suggestion teaches or counts: an answer to an older
    one still sets the outcome (``pairs.record_outcome``) but its features are not the ones
    stored. A "met" counts once both people said so."""
    at = fb.at.timestamp()
    if fb.group_id is not None:
        return Answered(after=before, example=_group_example(before, fb, policy), counted=False)
    if fb.outcome == "undelivered" and fb.suggestion_id != before.suggestion_id:
        return Answered(after=before, example=None, counted=False)  # an older suggestion's
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


def _group_example(
    s: logic.PairState, fb: FeedbackGiven, policy: logic.Policy | None
) -> learning.Example | None:
    label = learning.label_of(fb.outcome)
    if (
        label is None
        or policy is None
        or policy.model is None
        or s.last_at is None
        or s.n_ab == 0
        or s.n_ba == 0
    ):
        return None  # no model to learn, or the two never exchanged both ways
    # as of the pair's latest exchange, as the fitted examples are (evaluation/train.py)
    x = vector(policy.model, logic.features(s, s.last_at, policy))
    # one example per member pair and person: the key (suggestion, person) names the pair
    key = hashlib.sha256(f"{fb.group_id}|{s.a}|{s.b}".encode()).hexdigest()[:32]
    return learning.Example(
        suggestion_id=key,
        person=person_hash(fb.person_id),
        x=x,
        label=label,
        at=fb.at.timestamp(),
    )
