"""A person's "why not?" about someone they exchange with (issue 39; pure: no I/O imports).

The operator's explanation (``services.explain``) says everything about a pair. A person is
told only what they may know already, in this order:

1. **Their own settings** that keep the two apart, each named with where to change it: not
   opted in, a pause, their own "never with".
2. **Their own exchanges**, for a pair never suggested: which rule of the matcher is not met
   yet (reciprocity, repetition, recency, the model's judgement) and what would change it
   ("two more weeks of contact in both directions"). Both people know what they wrote to
   each other, so these facts are theirs.
3. **They already meet**: met in person lately, or both said they met.
4. **Everything else is "not now"**, the same words whatever the cause: once a pair has been
   suggested, what happened next may be the other person's (a decline, no consent, a
   "never with", quiet hours, a pause, their weekly cap) or the notifier's timing, and none
   of it may be told apart. So for ``NOT_NOW_DAYS`` after a suggestion (the decline
   cooldown: the longest any of those holds a pair back), the answer is "not now", even
   where the true cause is harmless (an ordinary cooldown): otherwise "not now" would itself
   say "declined". A suggestion the person was shown explains itself on the page ("Why we
   suggest this"), not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from schemas.people import Preferences
from services.matcher import decisions
from services.matcher.pairs import DAY, PairState

Answer = Literal["not_yet", "your_settings", "already_meeting", "not_now"]

#: where a person changes their own settings (the page and the API)
SETTINGS: Final = "/v1/me/preferences"
#: the one answer that never says why: the same words for every cause behind it
NOT_NOW_TEXT: Final = "Not now. We can't say more about this one."
#: the matcher's gates a person may be told about: their own exchanges with the other
OWN_EXCHANGES: Final = frozenset(
    {"reciprocity", "recency", "repetition", "recent_strength", "tie_strength"}
)


@dataclass(frozen=True)
class WhyNot:
    answer: Answer
    reasons: list[str] = field(default_factory=list)
    #: what would change the answer, in plain words (None: nothing the person can do)
    would_change: str | None = None
    #: where to change the setting named (only for the person's own settings)
    settings: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "reasons": self.reasons,
            "would_change": self.would_change,
            "settings": self.settings,
        }


NOT_NOW: Final = WhyNot("not_now", [NOT_NOW_TEXT])


def why_not(
    other: str,
    state: PairState,
    now_decision: decisions.Decision,
    mine: Preferences | None,
    now: datetime,
    *,
    not_now_days: float,
) -> WhyNot:
    """The answer for the person asking about the pair with ``other`` (see the module).
    ``now_decision``: the matcher's decision about the pair recomputed as of its latest
    exchange (``services.explain``: the matcher's clock is the events'); ``mine``: the
    asker's preferences; ``now``: the wall clock, for the asker's pause; ``not_now_days``:
    how long after a suggestion the answer is "not now" (the decline cooldown)."""
    own = _own_settings(other, mine, now)
    if own is not None:
        return own
    if state.outcome == "met" or now_decision.decided_by == "not_in_person_lately":
        return WhyNot(
            "already_meeting",
            ["You two already meet in person, so we don't suggest it."],
        )
    at = now_decision.at  # the matcher's clock: event time, as its cooldowns
    if state.suggested_at is not None and at - state.suggested_at < not_now_days * DAY:
        return NOT_NOW
    gate = now_decision.decided_by
    if gate is None and state.suggested_at is None:
        return WhyNot(
            "not_yet",
            ["Nothing holds it back: a suggestion can come with your next exchanges."],
        )
    if gate in OWN_EXCHANGES:
        g = now_decision.gate(gate)
        assert g is not None
        return WhyNot(
            "not_yet",
            [g.says] if g.says else [],
            would_change=decisions.nearest(now_decision),
        )
    return NOT_NOW


def _own_settings(other: str, mine: Preferences | None, now: datetime) -> WhyNot | None:
    if mine is None or not mine.opted_in:
        return WhyNot(
            "your_settings",
            ["You have not opted in to meetup suggestions."],
            would_change="Opt in to meetup suggestions.",
            settings=SETTINGS,
        )
    if other in mine.never_with:
        return WhyNot(
            "your_settings",
            ["You asked us never to suggest meeting this person."],
            would_change="Remove them from your “never with” list.",
            settings=SETTINGS,
        )
    if mine.paused_until is not None and now.astimezone(UTC).date() <= mine.paused_until:
        return WhyNot(
            "your_settings",
            [f"You paused suggestions until {mine.paused_until.isoformat()}."],
            would_change="End your pause.",
            settings=SETTINGS,
        )
    return None
