"""A person's "why not?" (services/feeds/why.py, issue 39): what they may be told, and that
every cause that is the other person's reads the same. The pair states are folded from
conversations whose outcome is known from how they were built (tests/unit/test_pairs.py);
the real route, on the real stack, is in tests/integration/test_why_not.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from schemas.people import Preferences
from services.feeds.why import NOT_NOW, NOT_NOW_TEXT, SETTINGS, why_not
from services.matcher import decisions
from services.matcher.pairs import DAY, PairState, record_outcome
from tests.factories import interaction
from tests.unit.test_pairs import POLICY, fold, talk

ME = Preferences(opted_in=True)
NOT_NOW_DAYS = POLICY.decline_cooldown_days


def ask(state: PairState, now: datetime, mine: Preferences | None = ME) -> dict[str, object]:
    d = decisions.decide(state, POLICY, now.timestamp())  # as if the pair talked at ``now``
    return why_not(state.b, state, d, mine, now, not_now_days=NOT_NOW_DAYS).to_dict()


def suggested() -> tuple[PairState, datetime]:
    state, out = fold(talk("a", "b"))
    assert state is not None and len(out) == 1
    return state, out[0].suggested_at


def test_the_asker_s_own_settings_are_named_with_where_to_change_them() -> None:
    state, at = suggested()
    later = at + timedelta(days=3)
    assert ask(state, later, None)["answer"] == "your_settings"
    assert ask(state, later, Preferences(opted_in=False))["reasons"] == [
        "You have not opted in to meetup suggestions."
    ]
    never = ask(state, later, Preferences(opted_in=True, never_with=["b"]))
    assert never["answer"] == "your_settings" and never["settings"] == SETTINGS
    assert "never to suggest" in str(never["reasons"])
    paused = Preferences(opted_in=True, paused_until=date(2030, 1, 1))
    assert ask(state, later, paused)["reasons"] == ["You paused suggestions until January 1, 2030."]


def test_a_pair_never_suggested_is_told_which_of_its_own_exchanges_are_missing() -> None:
    # two thoughtful replies one way, one the other (a two-word one is a reaction, not an
    # exchange): reciprocity (three each way) is not met yet
    events = [
        interaction("a", "b", kind="reply", text="How was the trip to Porto?", days=0),
        interaction("b", "a", kind="reply", text="Lovely, the tiles everywhere!", days=1),
        interaction("a", "b", kind="reply", text="Which museum did you like best?", days=2),
        interaction("b", "a", kind="reply", text="Azulejo, obviously", days=2.5),
    ]
    state, out = fold(events)
    assert state is not None and out == []
    got = ask(state, events[-1].occurred_at + timedelta(hours=1))
    assert got["answer"] == "not_yet"
    assert got["reasons"] == [
        "2 meaningful exchanges from you and 1 from them so far; we wait for 3 each way."
    ]
    assert got["would_change"] and got["settings"] is None


@pytest.mark.parametrize("outcome", [None, "declined", "undelivered", "accepted", "snoozed"])
def test_after_a_suggestion_every_cause_that_is_the_other_s_reads_the_same(
    outcome: str | None,
) -> None:
    """Declined by the other, not delivered (the other not opted in, or a "never with"),
    held for their quiet hours (no outcome), accepted by one: one answer, word for word."""
    state, at = suggested()
    if outcome is not None:
        state = record_outcome(state, outcome, at.timestamp(), "b")
    for days in (0.5, 3, 40, 170):
        assert ask(state, at + timedelta(days=days)) == NOT_NOW.to_dict()
    assert NOT_NOW.to_dict()["reasons"] == [NOT_NOW_TEXT]


def test_long_after_a_suggestion_the_own_exchanges_are_told_again() -> None:
    state, at = suggested()
    # the decline cooldown (the longest hold) is over: what is missing is new exchanges
    got = ask(state, at + timedelta(days=NOT_NOW_DAYS + 1))
    assert got["answer"] == "not_yet"


def test_people_who_meet_in_person_are_told_so() -> None:
    events = [interaction("a", "b", kind="in_person", days=0), *talk("a", "b", start=1)]
    state, out = fold(events)
    assert state is not None and out == []
    got = ask(state, datetime.fromtimestamp((state.last_at or 0) + DAY, UTC))
    assert got["answer"] == "already_meeting"
