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
from services.common.words import ENGLISH, N_, Words
from services.matcher import decisions
from services.matcher.pairs import DAY, PairState

Answer = Literal["not_yet", "your_settings", "already_meeting", "not_now"]

#: where a person changes their own settings (the page and the API)
SETTINGS: Final = "/v1/me/preferences"
#: the one answer that never says why: the same words for every cause behind it
NOT_NOW_TEXT: Final = N_("Not now. We can't say more about this one.")
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


def not_now(w: Words = ENGLISH) -> WhyNot:
    """The one answer that never says why, in ``w``'s words."""
    return WhyNot("not_now", [w.gettext(NOT_NOW_TEXT)])


def why_not(
    other: str,
    state: PairState,
    now_decision: decisions.Decision,
    mine: Preferences | None,
    now: datetime,
    *,
    not_now_days: float,
    words: Words = ENGLISH,
) -> WhyNot:
    """The answer for the person asking about the pair with ``other`` (see the module).
    ``now_decision``: the matcher's decision about the pair recomputed as of its latest
    exchange (``services.explain``: the matcher's clock is the events'); ``mine``: the
    asker's preferences; ``now``: the wall clock, for the asker's pause; ``not_now_days``:
    how long after a suggestion the answer is "not now" (the decline cooldown); ``words``:
    the asker's language."""
    w = words
    own = _own_settings(other, mine, now, w)
    if own is not None:
        return own
    if state.outcome == "met" or now_decision.decided_by == "not_in_person_lately":
        return WhyNot(
            "already_meeting",
            [w.gettext("You two already meet in person, so we don't suggest it.")],
        )
    at = now_decision.at  # the matcher's clock: event time, as its cooldowns
    if state.suggested_at is not None and at - state.suggested_at < not_now_days * DAY:
        return not_now(w)
    gate = now_decision.decided_by
    if gate is None and state.suggested_at is None:
        return WhyNot(
            "not_yet",
            [w.gettext("Nothing holds it back: a suggestion can come with your next exchanges.")],
        )
    if gate in OWN_EXCHANGES:
        g = now_decision.gate(gate)
        assert g is not None
        said, change = _own_exchanges(g, state, other, w)
        return WhyNot("not_yet", [said], would_change=change)
    return not_now(w)


def _own_exchanges(g: decisions.Gate, state: PairState, other: str, w: Words) -> tuple[str, str]:
    """What the asker's own exchanges with ``other`` lack (one of `OWN_EXCHANGES`), and what
    would change it, in the asker's words."""
    match g.name:
        case "reciprocity":
            mine, theirs = (
                (state.e_ba, state.e_ab) if state.a == other else (state.e_ab, state.e_ba)
            )
            k = int(str(g.threshold or 0))
            said = w.ngettext(
                "{mine} meaningful exchange from you and {theirs} from them so far; we wait "
                "for {k} each way.",
                "{mine} meaningful exchanges from you and {theirs} from them so far; we wait "
                "for {k} each way.",
                mine,
            ).format(mine=w.number(mine), theirs=w.number(theirs), k=w.number(k))
            more = max(1, k - min(mine, theirs))
            change = w.ngettext(
                "{n} more meaningful exchange from the quieter of you two",
                "{n} more meaningful exchanges from the quieter of you two",
                more,
            ).format(n=w.number(more))
            return said, change
        case "repetition":
            days, k = int(str(g.value or 0)), int(str(g.threshold or 0))
            said = w.ngettext(
                "You have been in touch on {n} different day lately; we wait for {k}.",
                "You have been in touch on {n} different days lately; we wait for {k}.",
                days,
            ).format(n=w.number(days), k=w.number(k))
            more = max(1, k - days)
            change = w.ngettext(
                "contact on {n} more different day", "contact on {n} more different days", more
            ).format(n=w.number(more))
            return said, change
        case "recency":
            if g.value is None:
                said = w.gettext("You two have not had a meaningful exchange yet.")
            else:
                days = round(float(g.value))
                said = w.ngettext(
                    "Your last meaningful exchange was {n} day ago; we suggest meeting only "
                    "while you are in touch.",
                    "Your last meaningful exchange was {n} days ago; we suggest meeting only "
                    "while you are in touch.",
                    days,
                ).format(n=w.number(days))
            return said, w.gettext("a new meaningful exchange")
        case "recent_strength":
            return (
                w.gettext("Your exchanges have been sparse lately, one way or both."),
                w.gettext("more meaningful exchanges, in both directions"),
            )
    return (
        w.gettext("From the pattern of your contact, this does not look like a close tie yet."),
        w.gettext(
            "more of what counts most: contact in more different weeks, quick answers to "
            "each other, a longer connection"
        ),
    )


def _own_settings(
    other: str, mine: Preferences | None, now: datetime, w: Words = ENGLISH
) -> WhyNot | None:
    if mine is None or not mine.opted_in:
        return WhyNot(
            "your_settings",
            [w.gettext("You have not opted in to meetup suggestions.")],
            would_change=w.gettext("Opt in to meetup suggestions."),
            settings=SETTINGS,
        )
    if other in mine.never_with:
        return WhyNot(
            "your_settings",
            [w.gettext("You asked us never to suggest meeting this person.")],
            would_change=w.gettext("Remove them from your “never with” list."),
            settings=SETTINGS,
        )
    if mine.paused_until is not None and now.astimezone(UTC).date() <= mine.paused_until:
        return WhyNot(
            "your_settings",
            [
                w.gettext("You paused suggestions until {date}.").format(
                    date=w.date(mine.paused_until)
                )
            ],
            would_change=w.gettext("End your pause."),
            settings=SETTINGS,
        )
    return None
